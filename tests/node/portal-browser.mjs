// Drives rolegate's portal in headless Chromium (Debian's /usr/bin/chromium through playwright-core):
//   node portal-browser.mjs --url URL --user NAME --password PW --account ID --permission-set NAME
//                           --out DIR
// Signs in on the start page, checks the portal home lists the permission set, opens its command line
// access page, runs axe-core on every page (serious or critical violations fail), signs out, saves a
// screenshot of each page to DIR and prints one JSON line to stdout:
//   {"credentials": {"AWS_ACCESS_KEY_ID": ..., ...}, "violations": [...], "after_logout": "<url>"}
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

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
try {
  // axe-core is injected as a script: the page's CSP (script-src 'self') would block it.
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${args.url}/login`);
  await check(page, '1-sign-in');
  await page.getByLabel('User name').fill(args.user);
  await page.getByLabel('Password').fill(args.password);
  const [signInResponse] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/login/local')),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  await page.waitForLoadState();
  console.error('sign-in answered', signInResponse.status(), await signInResponse.text().catch(() => ''));
  if (!page.url().startsWith(`${args.url}/portal`)) {
    throw new Error(`sign-in did not reach the portal: ${page.url()}: ${await page.textContent('main')}`);
  }
  await check(page, '2-portal-home');
  await page.getByRole('button', { name: `Command line access: ${args['permission-set']} in` }).click();
  await page.waitForSelector('pre#bash');
  await check(page, '3-command-line-access');
  const bash = await page.textContent('pre#bash');
  const credentials = Object.fromEntries([...bash.matchAll(/export (AWS_[A-Z_]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  const copyVisible = await page.isVisible('button.copy[data-copy="bash"]');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/login/);
  await check(page, '4-signed-out');
  await page.goto(`${args.url}/portal`);
  const afterLogout = page.url();
  process.stdout.write(`${JSON.stringify({ credentials, violations, copy_visible: copyVisible, after_logout: afterLogout })}\n`);
} finally {
  await browser.close();
}
