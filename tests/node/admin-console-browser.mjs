// Drives rolegate's operator console in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core), from a fresh directory to a first credential with the browser only:
//   node admin-console-browser.mjs --url URL --token BOOTSTRAP_TOKEN --permission-set NAME --out DIR
// Root is bootstrapped at /admin/bootstrap (the token from the log, a password, the authenticator
// app's key read from the page and two RFC 6238 codes), signs in with its password and a code,
// creates the groups `dev` (which the configuration gives the permission set) and `helpdesk` (a
// policy allowing only password resets and unlocks), the users alice (in dev), hal (in helpdesk) and
// carol (with an access key, its secret shown once), and looks at the access, audit and health pages.
// alice signs in and takes command line access: the first credential. hal signs in, is refused the
// console until MFA, sets up an authenticator app, and then sees only a user lookup, resets carol's
// password, and is refused when it sends a form beyond its grant. Runs axe-core on every page
// (serious or critical violations are reported), saves a screenshot of each and prints one JSON line.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { base32Decode, stepNow, totp } from './totp.mjs';

console.log = console.error;
const { values: args } = parseArgs({
  options: {
    url: { type: 'string' }, token: { type: 'string' }, 'permission-set': { type: 'string' },
    out: { type: 'string' },
  },
});
const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
mkdirSync(args.out, { recursive: true });

// A code after the last step used (`after`), at most one step ahead of now (within the drift allowed).
async function nextCode(key, after) {
  while (stepNow() + 1 <= after) await new Promise((r) => setTimeout(r, 500));
  const step = Math.max(after + 1, stepNow());
  return { step, code: totp(key, step) };
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const violations = [];
const seen = [];
async function check(page, name) {
  seen.push(name);
  await page.screenshot({ path: `${args.out}/${name}.png`, fullPage: true });
  await page.addScriptTag({ path: axePath });
  const result = await page.evaluate(async () => window.axe.run());
  for (const v of result.violations) {
    if (v.impact === 'serious' || v.impact === 'critical') violations.push({ page: name, id: v.id, impact: v.impact });
  }
}
function expectPath(page, prefix) {
  if (!page.url().startsWith(`${args.url}${prefix}`)) throw new Error(`expected ${prefix}, at ${page.url()}`);
}
async function signIn(page, user, password, returnTo = '/portal', code = null) {
  await page.goto(`${args.url}/login?return_to=${encodeURIComponent(returnTo)}`);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  if (code) await page.locator('#code').fill(code);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState();
}
async function signOut(page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/login/);
}
async function submit(page, button) {
  await page.getByRole('button', { name: button, exact: true }).click();
  await page.waitForLoadState();
}

const rootPassword = 'root pass phrase for the console test';
const passwords = { alice: 'alice pass phrase 2026', hal: 'hal pass phrase 2026', carol: 'carol pass phrase 2026' };
const helpdeskPolicy = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: ['rolegate:UpdateLoginProfile', 'rolegate:UnlockUser'], Resource: 'arn:aws:iam::*:user/*' }],
});

try {
  // axe-core is injected as a script: the page's CSP (script-src 'self') would block it.
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();

  // Root's bootstrap.
  await page.goto(`${args.url}/admin/bootstrap`);
  await check(page, 'console-01-bootstrap');
  await page.getByLabel('Bootstrap token').fill('not the token');
  await page.getByLabel("Root's password").fill(rootPassword);
  await page.getByLabel('The same again').fill(rootPassword);
  await submit(page, 'Continue');
  const wrongToken = await page.textContent('#bootstrap-error');
  await page.getByLabel('Bootstrap token').fill(args.token);
  await page.getByLabel("Root's password").fill(rootPassword);
  await page.getByLabel('The same again').fill(rootPassword);
  await submit(page, 'Continue');
  await check(page, 'console-02-bootstrap-mfa');
  const rootKey = base32Decode((await page.textContent('#totp-secret')).replace(/\s/g, ''));
  const enrol = stepNow();
  await page.locator('#code1').fill(totp(rootKey, enrol));
  await page.locator('#code2').fill(totp(rootKey, enrol + 1));
  await submit(page, 'Finish');
  await check(page, 'console-03-root-ready');
  const rootReady = await page.textContent('main');

  // Root signs in to the console, with a code of its app on the sign-in form.
  await page.getByRole('link', { name: 'Sign in to the console' }).click();
  await page.getByLabel('User name').fill('root');
  await page.getByLabel('Password').fill(rootPassword);
  await page.locator('#code').fill((await nextCode(rootKey, enrol + 1)).code);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState();
  expectPath(page, '/admin');
  await check(page, 'console-04-home-root');

  // Groups.
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Groups' }).click();
  for (const g of ['dev', 'helpdesk']) {
    await page.getByLabel('Group name').fill(g);
    await submit(page, 'Create');
    await page.goto(`${args.url}/admin/console/groups`);
  }
  await check(page, 'console-05-groups');
  await page.goto(`${args.url}/admin/console/groups/helpdesk`);
  await page.getByLabel('Policy name (an existing name replaces it)').fill('desk');
  await page.getByLabel('Policy document (JSON)').fill('{"not": json');
  await submit(page, 'Save policy');
  const badPolicy = await page.textContent('#put-policy-error');
  const keptPolicyName = await page.getByLabel('Policy name (an existing name replaces it)').inputValue();
  await check(page, 'console-06-group-policy-error');
  await page.getByLabel('Policy document (JSON)').fill(helpdeskPolicy);
  await submit(page, 'Save policy');
  await check(page, 'console-07-group');

  // Users: a name refused beside its field, then alice, hal and carol.
  await page.goto(`${args.url}/admin/console/users`);
  await page.getByLabel('User name').fill('bad name!');
  await submit(page, 'Create');
  const badName = await page.textContent('#create-error');
  const keptName = await page.getByLabel('User name').inputValue();
  await check(page, 'console-08-user-name-error');
  for (const [name, group] of [['alice', 'dev'], ['hal', 'helpdesk'], ['carol', null]]) {
    await page.goto(`${args.url}/admin/console/users`);
    await page.getByLabel('User name').fill(name);
    await submit(page, 'Create');
    expectPath(page, `/admin/console/users/${name}`);
    await page.getByLabel('New password').fill(passwords[name]);
    await page.getByLabel('The same again').fill(passwords[name]);
    await submit(page, 'Set password');
    if (group) {
      await page.getByLabel('Add to group').fill(group);
      await submit(page, 'Add');
    }
  }
  await check(page, 'console-09-user');
  await submit(page, 'Create access key');
  await check(page, 'console-10-key-created');
  const shownKey = await page.textContent('main');
  await page.getByRole('link', { name: 'Back to carol' }).click();
  const carolPage = await page.textContent('main');
  await page.goto(`${args.url}/admin/console/users?q=a`);
  await check(page, 'console-11-users-search');
  const search = await page.textContent('main');
  await page.goto(`${args.url}/admin/console/access`);
  await check(page, 'console-12-access');
  const access = await page.textContent('main');
  await page.goto(`${args.url}/admin/console/audit?action=rolegate%3ACreateUser`);
  await check(page, 'console-13-audit');
  const audit = await page.textContent('main');
  await page.goto(`${args.url}/admin/console/health`);
  await check(page, 'console-14-health');
  const health = await page.textContent('main');
  await signOut(page);

  // alice's first credential.
  await signIn(page, 'alice', passwords.alice);
  expectPath(page, '/portal');
  await page.getByRole('button', { name: `Command line access: ${args['permission-set']} in` }).click();
  await page.waitForSelector('pre#bash');
  await check(page, 'console-15-first-credential');
  const bash = await page.textContent('pre#bash');
  const credentials = Object.fromEntries([...bash.matchAll(/export (AWS_[A-Z_]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  await signOut(page);

  // hal: no console without MFA; then an authenticator app; then only the helpdesk's grant.
  await signIn(page, 'hal', passwords.hal, '/admin');
  expectPath(page, '/admin');
  await check(page, 'console-16-helpdesk-without-mfa');
  const withoutMfa = await page.textContent('main');
  await page.goto(`${args.url}/portal/security`);
  await page.getByRole('button', { name: 'Set up authenticator app' }).click();
  await page.waitForURL(/\/portal\/security\/totp$/);
  const halKey = base32Decode((await page.textContent('#totp-secret')).replace(/\s/g, ''));
  const halEnrol = stepNow();
  await page.locator('#code1').fill(totp(halKey, halEnrol));
  await page.locator('#code2').fill(totp(halKey, halEnrol + 1));
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.waitForSelector('#recovery-codes');
  await signOut(page);
  await signIn(page, 'hal', passwords.hal, '/admin', (await nextCode(halKey, halEnrol + 1)).code);
  expectPath(page, '/admin');
  await check(page, 'console-17-home-helpdesk');
  const helpdeskHome = await page.textContent('body');
  await page.getByLabel('User name').fill('carol');
  await page.getByRole('button', { name: 'Open' }).click();
  await page.waitForLoadState();
  await check(page, 'console-18-user-as-helpdesk');
  const helpdeskUser = await page.textContent('main');
  const offered = await page.locator('main form').evaluateAll((fs) => fs.map((f) => new URL(f.action).pathname));
  await page.getByLabel('New password').fill('carol new pass phrase 1');
  await page.getByLabel('The same again').fill('carol new pass phrase 1');
  await submit(page, 'Set password');
  const helpdeskReset = await page.textContent('main');
  // A form beyond the grant, sent anyway from the console's own page with its CSRF token.
  await page.evaluate(() => {
    const f = document.createElement('form');
    f.method = 'post';
    f.action = '/admin/console/users/carol/disable';
    const t = document.createElement('input');
    t.type = 'hidden';
    t.name = 'csrf';
    t.value = document.querySelector('input[name=csrf]').value;
    f.appendChild(t);
    document.body.appendChild(f);
    f.submit();
  });
  await page.waitForLoadState();
  await page.waitForSelector('h1');
  await check(page, 'console-19-helpdesk-refused');
  const refused = await page.textContent('main');

  process.stdout.write(`${JSON.stringify({
    violations, pages: seen, wrong_token: wrongToken, root_ready: rootReady, bad_policy: badPolicy,
    kept_policy_name: keptPolicyName, bad_name: badName, kept_name: keptName, shown_key: shownKey,
    carol_page: carolPage, search, access, audit, health, credentials, without_mfa: withoutMfa,
    helpdesk_home: helpdeskHome, helpdesk_user: helpdeskUser, offered, helpdesk_reset: helpdeskReset,
    refused,
  })}\n`);
} finally {
  await browser.close();
}
