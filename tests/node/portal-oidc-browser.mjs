// Drives rolegate's portal sign-in through an OpenID provider in headless Chromium (Debian's
// /usr/bin/chromium through playwright-core):
//   node portal-oidc-browser.mjs --url URL --provider-button "Sign in with X" --user NAME --password PW
//                                [--step-up-set NAME] [--down-provider NAME] --out DIR
// On the start page clicks the provider's button, fills the provider's own login form (oidc-idp.mjs),
// follows the redirects back to rolegate, and reads the portal home; with --step-up-set asks for
// command line access to that permission set, which must answer the "Sign in again with MFA" page;
// with --down-provider also opens
// that provider's sign-in, which must answer rolegate's "unreachable" page. Runs axe-core on rolegate's
// pages and the provider's form (serious or critical violations of rolegate's pages fail), saves a
// screenshot of each page to DIR and prints one JSON line to stdout:
//   {"portal_url": ..., "portal_text": ..., "step_up_link": ..., "down_status": N, "down_text": ...,
//    "violations": [...]}
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

console.log = console.error;
const { values: args } = parseArgs({
  options: {
    url: { type: 'string' }, 'provider-button': { type: 'string' }, user: { type: 'string' },
    password: { type: 'string' }, 'down-provider': { type: 'string' }, 'step-up-set': { type: 'string' },
    out: { type: 'string' },
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
async function check(page, name, { axe = true } = {}) {
  await page.screenshot({ path: `${args.out}/${name}.png`, fullPage: true });
  if (!axe) return;
  await page.addScriptTag({ path: axePath });
  const result = await page.evaluate(async () => window.axe.run());
  for (const v of result.violations) {
    if (v.impact === 'serious' || v.impact === 'critical') violations.push({ page: name, id: v.id, impact: v.impact });
  }
}
try {
  // axe-core is injected as a script: the page's CSP (script-src 'self') would block it.
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${args.url}/login`);
  await check(page, '1-sign-in');
  await page.getByRole('link', { name: args['provider-button'] }).click();
  await page.waitForSelector('form input[name="login"]');
  // The provider's page is the test IdP's, not rolegate's: screenshot only.
  await check(page, '2-idp-login', { axe: false });
  await page.fill('input[name="login"]', args.user);
  await page.fill('input[name="password"]', args.password);
  await Promise.all([
    page.waitForURL(`${args.url}/portal**`),
    page.click('#submit'),
  ]);
  await page.waitForLoadState();
  const portalUrl = page.url();
  const portalText = await page.textContent('body');
  await check(page, '3-portal-home');
  let stepUpLink = null;
  if (args['step-up-set']) {
    await page.getByRole('button', { name: `Command line access: ${args['step-up-set']} in` }).click();
    await page.waitForSelector('#step-up');
    stepUpLink = await page.getAttribute('#step-up', 'href');
    await check(page, '5-step-up');
  }
  let downStatus = null;
  let downText = null;
  if (args['down-provider']) {
    const response = await page.goto(`${args.url}/login/oidc/${args['down-provider']}`);
    downStatus = response.status();
    downText = await page.textContent('main');
    await check(page, '4-idp-down');
  }
  process.stdout.write(`${JSON.stringify({
    portal_url: portalUrl, portal_text: portalText, step_up_link: stepUpLink, down_status: downStatus,
    down_text: downText, violations,
  })}\n`);
} finally {
  await browser.close();
}
