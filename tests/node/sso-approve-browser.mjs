// Approves (or denies) command line sign-ins in rolegate's portal with headless Chromium (Debian's
// /usr/bin/chromium through playwright-core):
//   node sso-approve-browser.mjs --url URL --user NAME --password PW --steps JSON --out DIR
// STEPS is a JSON list, worked through in order in one browser:
//   {"name": "...", "kind": "device", "url": "<verificationUriComplete>", "decision": "approve"|"deny"}
//   {"name": "...", "kind": "authorize", "url": "<authorization URL>", "decision": ..., "callback": "<prefix>"}
// The first step's URL sends the browser to sign in (the local user form), which comes back to it.
// A device step checks the code form is filled in from the URL, goes on to the page naming the
// client and decides; an authorize step decides on the authorization page and waits until the
// browser lands on the client's loopback callback. Pages keep their real CSP (the authorization
// page's form must be allowed to lead to the loopback origin); axe-core runs on every page (serious
// or critical violations are reported). Prints one JSON line to stdout:
//   {"results": [{"name", "client_name", "user_code", "heading", "final_url"}], "violations": [...]}
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

console.log = console.error;
const { values: args } = parseArgs({
  options: {
    url: { type: 'string' }, user: { type: 'string' }, password: { type: 'string' },
    steps: { type: 'string' }, out: { type: 'string' },
  },
});
const steps = JSON.parse(args.steps);
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
mkdirSync(args.out, { recursive: true });

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const violations = [];
async function check(page, name) {
  await page.screenshot({ path: `${args.out}/${name}.png`, fullPage: true });
  // Evaluated through the DevTools protocol, which the page's CSP does not govern (a script tag
  // would be refused by script-src 'self').
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => window.axe.run());
  for (const v of result.violations) {
    if (v.impact === 'serious' || v.impact === 'critical') violations.push({ page: name, id: v.id, impact: v.impact });
  }
}

const results = [];
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  let signedIn = false;
  for (const step of steps) {
    await page.goto(step.url);
    if (!signedIn) {
      if (!page.url().startsWith(`${args.url}/login?return_to=`)) {
        throw new Error(`${step.name}: expected the sign-in page, got ${page.url()}`);
      }
      await check(page, `${step.name}-0-sign-in`);
      await page.getByLabel('User name').fill(args.user);
      await page.getByLabel('Password').fill(args.password);
      await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
      signedIn = true;
    }
    const result = { name: step.name };
    if (step.kind === 'device') {
      if (!page.url().startsWith(`${args.url}/device?user_code=`)) {
        throw new Error(`${step.name}: sign-in did not come back to the device page: ${page.url()}`);
      }
      result.prefilled = await page.getByLabel('Code shown by your device').inputValue();
      await check(page, `${step.name}-1-code`);
      await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Next' }).click()]);
      result.client_name = await page.textContent('#client-name');
      result.user_code = await page.textContent('#user-code');
      await check(page, `${step.name}-2-confirm`);
      const button = step.decision === 'approve' ? 'Approve' : 'Deny';
      await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: button, exact: true }).click()]);
      result.heading = await page.textContent('h1');
      await check(page, `${step.name}-3-done`);
    } else {
      if (!page.url().startsWith(`${args.url}/authorize?`)) {
        throw new Error(`${step.name}: not on the authorization page: ${page.url()}: ${await page.textContent('main')}`);
      }
      result.client_name = await page.textContent('#client-name');
      await check(page, `${step.name}-1-authorize`);
      const button = step.decision === 'approve' ? 'Approve' : 'Deny';
      await Promise.all([
        page.waitForURL((u) => u.href.startsWith(step.callback), { timeout: 15000 }),
        page.getByRole('button', { name: button, exact: true }).click(),
      ]);
      result.final_url = page.url();
      result.heading = await page.textContent('h1').catch(() => null);
    }
    results.push(result);
  }
  process.stdout.write(`${JSON.stringify({ results, violations })}\n`);
} finally {
  await browser.close();
}
