// Drives rolegate's security-key pages in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core) with Chromium's virtual authenticator (CDP WebAuthn domain):
//   node webauthn-browser.mjs --url URL --user NAME --password PW --account ID --permission-set NAME
//                             --out DIR
// URL must be the public URL (http://localhost:PORT: browsers refuse WebAuthn on an IP address).
// With a CTAP2 virtual authenticator (user verification, automatic presence) it signs in with the
// password, enrols a key on /portal/security/webauthn, signs out, signs in with the password again,
// passes the challenge on /portal/mfa/webauthn and takes command line access for the permission set
// (which needs MFA). Then two refusals, each followed by a sign-in without MFA:
//   * "cloned": the enrolled credential copied into a second authenticator with a stale signature
//     counter: rolegate refuses the answer;
//   * "other": only an authenticator without the registered credential: the browser finds no key.
// The pages run under rolegate's own CSP (axe-core is evaluated through DevTools, which the CSP does
// not govern); axe-core's serious or critical violations are collected. A screenshot of each step is
// saved to DIR. Prints one JSON line to stdout.
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

console.log = console.error;
const { values: args } = parseArgs({
  options: {
    url: { type: 'string' }, user: { type: 'string' }, password: { type: 'string' },
    account: { type: 'string' }, 'permission-set': { type: 'string' }, out: { type: 'string' },
  },
});
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
mkdirSync(args.out, { recursive: true });
const port = new URL(args.url).port;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--host-resolver-rules=MAP localhost 127.0.0.1'],
});
const violations = [];
const out = { violations };
async function check(page, name) {
  await page.screenshot({ path: `${args.out}/${name}.png`, fullPage: true });
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.evaluate(axeSource);
  const result = await page.evaluate(async () => window.axe.run());
  for (const v of result.violations) {
    if (v.impact === 'serious' || v.impact === 'critical') violations.push({ page: name, id: v.id, impact: v.impact });
  }
}
const authenticator = {
  protocol: 'ctap2', transport: 'usb', hasResidentKey: false,
  hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
};

try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (m) => console.error('page:', m.text()));
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const first = (await cdp.send('WebAuthn.addVirtualAuthenticator', { options: authenticator })).authenticatorId;

  async function signIn() {
    await page.goto(`${args.url}/login`);
    await page.getByLabel('User name').fill(args.user);
    await page.getByLabel('Password').fill(args.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // A user with a security key who signed in with the password alone is sent to the challenge.
    await page.waitForURL((u) => u.pathname === '/portal' || u.pathname === '/portal/mfa');
  }
  async function signOut() {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/login/);
  }
  // The permission set's command line access: the credentials, or the refusal's text.
  async function commandLineAccess() {
    await page.goto(`${args.url}/portal`);
    if (new URL(page.url()).pathname === '/portal/mfa') {
      // The session waits for the MFA challenge: nothing is handed out before it.
      return { pending: true, refused: (await page.textContent('main')).trim() };
    }
    await page.getByRole('button', { name: `Command line access: ${args['permission-set']} in` }).click();
    await page.waitForLoadState();
    if (await page.isVisible('pre#bash')) {
      const bash = await page.textContent('pre#bash');
      return Object.fromEntries([...bash.matchAll(/export (AWS_[A-Z_]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    }
    return { refused: (await page.textContent('main')).trim() };
  }
  // Answers the challenge page; returns where the browser is and the page's status text.
  async function challenge(name) {
    await page.goto(`${args.url}/portal/mfa/webauthn?return_to=/portal`);
    await page.getByRole('button', { name: 'Use security key' }).waitFor();
    await check(page, name);
    await page.getByRole('button', { name: 'Use security key' }).click();
    await Promise.race([
      page.waitForURL(`${args.url}/portal`, { timeout: 20000 }),
      page.waitForSelector('#webauthn-status.error', { timeout: 20000 }),
    ]);
    return { url: page.url(), status: ((await page.textContent('#webauthn-status').catch(() => '')) || '').trim() };
  }

  await page.goto(`${args.url}/login`);
  await check(page, '1-sign-in');
  await signIn();
  await page.goto(`${args.url}/portal/security/webauthn`);
  await page.getByLabel('Name of the key').waitFor();
  out.unsupported_notice_hidden = !(await page.isVisible('#webauthn-unsupported'));
  await check(page, '2-security-keys-empty');
  await page.getByLabel('Name of the key').fill('Virtual key');
  await page.getByRole('button', { name: 'Add security key' }).click();
  await Promise.race([
    page.waitForURL(/done=added/, { timeout: 20000 }),
    page.waitForSelector('#webauthn-status.error', { timeout: 20000 }),
  ]);
  out.after_enrol = page.url();
  out.enrol_status = ((await page.textContent('#webauthn-status').catch(() => '')) || '').trim();
  out.keys_table = (await page.textContent('table').catch(() => '')).replace(/\s+/g, ' ').trim();
  await check(page, '3-security-key-added');
  const [registered] = (await cdp.send('WebAuthn.getCredentials', { authenticatorId: first })).credentials;
  if (!registered) throw new Error(`enrolment failed: ${JSON.stringify(out)}`);
  out.registered_sign_count = registered.signCount;

  await signOut();
  await signIn();
  out.before_challenge = await commandLineAccess();
  const passed = await challenge('4-challenge');
  out.challenge = passed;
  await check(page, '5-after-challenge');
  out.credentials = await commandLineAccess();
  await check(page, '6-command-line-access');
  out.sign_count_after = (await cdp.send('WebAuthn.getCredentials', { authenticatorId: first })).credentials[0].signCount;

  // A copy of the key with a counter that fell behind.
  await signOut();
  await signIn();
  await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: first });
  const clone = (await cdp.send('WebAuthn.addVirtualAuthenticator', { options: authenticator })).authenticatorId;
  await cdp.send('WebAuthn.addCredential', {
    authenticatorId: clone,
    credential: { ...registered, signCount: 0, isResidentCredential: false },
  });
  out.cloned = await challenge('7-challenge-cloned-key');
  await check(page, '8-cloned-key-refused');
  out.after_cloned = await commandLineAccess();

  // Only an authenticator that never registered with rolegate.
  await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: clone });
  await cdp.send('WebAuthn.addVirtualAuthenticator', { options: authenticator });
  out.other = await challenge('9-challenge-other-key');
  await check(page, '10-other-key-refused');
  out.after_other = await commandLineAccess();
  out.port = port;
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await browser.close();
}
