// Drives "Open console" in headless Chromium (Debian's /usr/bin/chromium through playwright-core):
//   node console-browser.mjs --url URL --user NAME --password PW [--code TOTP] --permission-set NAME
//                            --out DIR [--allow ACTION=RESOURCE] [--deny ACTION=RESOURCE]
// Signs in on the start page (with the MFA code when given), presses "Open console" for the
// permission set on the portal home, and then either
//   - lands on the "MFA required" page (refused): reports its text and the MFA link, or
//   - lands on the console page: reports the ARN shown, runs the policy simulator for the --allow
//     and --deny requests, signs out of the console.
// axe-core runs on every page (serious or critical violations are reported); a screenshot of each
// page is saved to DIR as console-<user>-<n>-<page>.png. Prints one JSON line to stdout.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

console.log = console.error;
const { values: args } = parseArgs({
  options: {
    url: { type: 'string' }, user: { type: 'string' }, password: { type: 'string' },
    code: { type: 'string' }, 'permission-set': { type: 'string' }, out: { type: 'string' },
    allow: { type: 'string' }, deny: { type: 'string' },
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
const screenshots = [];
let n = 0;
async function check(page, name) {
  n += 1;
  const file = `${args.out}/console-${args.user}-${n}-${name}.png`;
  await page.screenshot({ path: file, fullPage: true });
  screenshots.push(file);
  await page.addScriptTag({ path: axePath });
  const result = await page.evaluate(async () => window.axe.run());
  for (const v of result.violations) {
    if (v.impact === 'serious' || v.impact === 'critical') violations.push({ page: name, id: v.id, impact: v.impact });
  }
}
async function simulate(page, request) {
  const [action, resource] = request.split(/=(.*)/s);
  await page.getByLabel('Action').fill(action);
  await page.getByLabel('Resource').fill(resource);
  await Promise.all([
    page.waitForURL(/\/console\/simulate$/),
    page.getByRole('button', { name: 'Simulate' }).click(),
  ]);
  await page.waitForSelector('#sim-result');
  return {
    result: (await page.textContent('#sim-result')).trim(),
    explanation: await page.textContent('#sim-explanation'),
  };
}
try {
  // axe-core is injected as a script: the page's CSP (script-src 'self') would block it.
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${args.url}/login`);
  await page.getByLabel('User name').fill(args.user);
  await page.getByLabel('Password').fill(args.password);
  if (args.code) await page.getByLabel('MFA code').fill(args.code);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState();
  if (!page.url().startsWith(`${args.url}/portal`)) {
    throw new Error(`sign-in did not reach the portal: ${page.url()}: ${await page.textContent('main')}`);
  }
  await check(page, 'portal-home');
  const [opened] = await Promise.all([
    page.waitForNavigation(),
    page.getByRole('button', { name: `Open console: ${args['permission-set']} in` }).click(),
  ]);
  const out = { status: opened ? opened.status() : null, url: page.url(), violations, screenshots };
  const heading = (await page.textContent('h1')).trim();
  out.heading = heading;
  if (heading === 'MFA required') {
    await check(page, 'mfa-required');
    out.message = (await page.textContent('[role=alert]')).trim();
    out.mfa_link = await page.getByRole('link', { name: 'Verify with MFA' }).getAttribute('href');
  } else {
    await check(page, 'console');
    out.arn = (await page.textContent('#arn')).trim();
    out.cookies = (await context.cookies()).map((c) => ({ name: c.name, secure: c.secure, httpOnly: c.httpOnly }));
    if (args.allow) {
      out.allow = await simulate(page, args.allow);
      await check(page, 'simulate-allow');
    }
    if (args.deny) {
      out.deny = await simulate(page, args.deny);
      await check(page, 'simulate-deny');
    }
    await Promise.all([
      page.waitForURL(/\/portal$/),
      page.getByRole('button', { name: 'Sign out of the console' }).click(),
    ]);
    await page.goto(`${args.url}/console`);
    out.after_sign_out = (await page.textContent('h1')).trim();
    await check(page, 'after-sign-out');
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await browser.close();
}
