// Drives rolegate's MFA pages in headless Chromium (Debian's /usr/bin/chromium through playwright-core):
//   node mfa-browser.mjs --url URL --user NAME --password PW --account ID --permission-set NAME --out DIR
// The user has a password and no MFA. Signs in, sets up TOTP on the sign-in security page (reading the
// secret from the page and computing codes with RFC 6238), keeps the recovery codes shown, signs out,
// signs in again and passes the challenge with a recovery code (after a wrong TOTP code), signs out,
// signs in and passes the challenge with a TOTP code, then opens command line access for the permission
// set (which needs MFA), makes new recovery codes, checks that a used and an old recovery code are
// refused and a new one passes, and removes the app. Runs axe-core on every page (serious or critical violations are reported),
// saves a screenshot of each page to DIR and prints one JSON line to stdout.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { base32Decode, stepNow, totp } from './totp.mjs';

console.log = console.error;
const { values: args } = parseArgs({
  options: {
    url: { type: 'string' }, user: { type: 'string' }, password: { type: 'string' },
    account: { type: 'string' }, 'permission-set': { type: 'string' }, out: { type: 'string' },
  },
});
const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
mkdirSync(args.out, { recursive: true });


const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const violations = [];
async function check(page, name) {
  await page.screenshot({ path: `${args.out}/${name}.png`, fullPage: true });
  await page.addScriptTag({ path: axePath });
  const result = await page.evaluate(async () => window.axe.run());
  for (const v of result.violations) {
    if (v.impact === 'serious' || v.impact === 'critical') violations.push({ page: name, id: v.id, impact: v.impact });
  }
}
async function signIn(page) {
  await page.goto(`${args.url}/login`);
  await page.getByLabel('User name').fill(args.user);
  await page.getByLabel('Password').fill(args.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState();
}
async function signOut(page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/login/);
}
function expectPath(page, prefix) {
  if (!page.url().startsWith(`${args.url}${prefix}`)) {
    throw new Error(`expected ${prefix}, at ${page.url()}`);
  }
}

try {
  // axe-core is injected as a script: the page's CSP (script-src 'self') would block it.
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await signIn(page);
  expectPath(page, '/portal');
  await page.goto(`${args.url}/portal/mfa`);
  await check(page, 'mfa-0-no-method');
  const noMethod = await page.textContent('main');
  await page.goto(`${args.url}/portal`);
  await page.getByRole('link', { name: 'Sign-in security' }).click();
  await page.waitForURL(/\/portal\/security$/);
  await check(page, 'mfa-1-security');

  await page.getByRole('button', { name: 'Set up authenticator app' }).click();
  await page.waitForURL(/\/portal\/security\/totp$/);
  await check(page, 'mfa-2-enrol-qr');
  const qrCodes = await page.locator('.qr svg[role="img"]').count();
  const secret = (await page.textContent('#totp-secret')).replace(/\s/g, '');
  const key = base32Decode(secret);
  const enrolStep = stepNow();
  await page.locator('#code1').fill(totp(key, enrolStep));
  await page.locator('#code2').fill(totp(key, enrolStep + 1));
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.waitForSelector('#recovery-codes');
  await check(page, 'mfa-3-recovery-codes');
  const recoveryCodes = (await page.locator('#recovery-codes code').allTextContents()).map((c) => c.trim());
  await signOut(page);

  // A password-only sign-in now waits for the challenge.
  await signIn(page);
  expectPath(page, '/portal/mfa');
  const challengeUrl = page.url();
  await check(page, 'mfa-4-challenge');
  await page.locator('#totp-code').fill(totp(key, enrolStep + 20));
  await page.getByRole('button', { name: 'Verify code' }).click();
  await page.waitForSelector('p.notice[role="alert"]');
  const wrongCodeMessage = await page.textContent('p.notice[role="alert"]');
  await check(page, 'mfa-5-wrong-code');
  await page.goto(`${args.url}/portal`);
  const homeWhilePending = page.url();
  await page.locator('#recovery-code').fill(recoveryCodes[0]);
  await page.getByRole('button', { name: 'Use recovery code' }).click();
  await page.waitForURL(`${args.url}/portal`);
  await check(page, 'mfa-6-home-after-recovery-code');
  await signOut(page);

  // The recovery code is spent; the TOTP challenge: a step after the enrolment's two and one
  // step ahead of now (within the allowed drift), so a slow run still has a minute to submit it.
  await signIn(page);
  expectPath(page, '/portal/mfa');
  await page.locator('#recovery-code').fill(recoveryCodes[0]);
  await page.getByRole('button', { name: 'Use recovery code' }).click();
  await page.waitForSelector('p.notice[role="alert"]');
  const reusedCodeMessage = await page.textContent('p.notice[role="alert"]');
  while (stepNow() < enrolStep + 1) await new Promise((r) => setTimeout(r, 500));
  const totpStep = Math.max(enrolStep + 2, stepNow() + 1);
  const totpCode = totp(key, totpStep);
  await page.locator('#totp-code').fill(totpCode);
  await page.getByRole('button', { name: 'Verify code' }).click();
  await page.waitForURL(`${args.url}/portal`);
  await page.getByRole('button', { name: `Command line access: ${args['permission-set']} in` }).click();
  await page.waitForSelector('pre#bash');
  await check(page, 'mfa-7-mfa-credentials');
  const bash = await page.textContent('pre#bash');
  const credentials = Object.fromEntries([...bash.matchAll(/export (AWS_[A-Z_]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  await page.goto(`${args.url}/portal/security`);
  await check(page, 'mfa-8-security-enrolled');
  const security = await page.textContent('main');
  // The MFA is fresh: new recovery codes, then removing the app, need no further challenge.
  await page.getByRole('button', { name: 'Make new recovery codes' }).click();
  await page.waitForSelector('#recovery-codes');
  await check(page, 'mfa-9-new-recovery-codes');
  const newRecoveryCodes = (await page.locator('#recovery-codes code').allTextContents()).map((c) => c.trim());
  await signOut(page);
  await signIn(page);
  expectPath(page, '/portal/mfa');
  await page.locator('#recovery-code').fill(recoveryCodes[1]);
  await page.getByRole('button', { name: 'Use recovery code' }).click();
  await page.waitForSelector('p.notice[role="alert"]');
  const oldCodeMessage = await page.textContent('p.notice[role="alert"]');
  await page.locator('#recovery-code').fill(newRecoveryCodes[0]);
  await page.getByRole('button', { name: 'Use recovery code' }).click();
  await page.waitForURL(`${args.url}/portal`);
  await page.goto(`${args.url}/portal/security`);
  await page.getByRole('button', { name: 'Remove authenticator app' }).click();
  await page.waitForURL(/\/portal\/security$/);
  await check(page, 'mfa-10-removed');
  const afterRemoval = await page.textContent('main');
  process.stdout.write(`${JSON.stringify({
    secret, qr_codes: qrCodes, enrol_step: enrolStep, recovery_codes: recoveryCodes,
    challenge_url: challengeUrl, wrong_code_message: wrongCodeMessage, home_while_pending: homeWhilePending,
    totp_step: totpStep, totp_code: totpCode, credentials, security, violations, no_method: noMethod,
    new_recovery_codes: newRecoveryCodes, after_removal: afterRemoval, reused_code_message: reusedCodeMessage,
    old_code_message: oldCodeMessage,
  })}\n`);
} finally {
  await browser.close();
}
