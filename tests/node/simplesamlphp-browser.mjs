// Signs in to rolegate's portal through SimpleSAMLphp in headless Chromium (Debian's /usr/bin/chromium
// through playwright-core):
//   node simplesamlphp-browser.mjs --url ROLEGATE_URL --provider NAME --user NAME --password PW
//                                  [--permission-set NAME] [--idp-initiated IDP_URL] --out DIR
// SP-initiated (the default): opens rolegate's sign-in page and follows the provider's link to
// SimpleSAMLphp's login form. With --idp-initiated: opens IDP_URL, SimpleSAMLphp's IdP-initiated
// SSOService.php?spentityid=… address, which shows its login form first. Either way it signs in
// there, lets SimpleSAMLphp's page post the SAMLResponse to rolegate's ACS, waits for the portal
// home and, given --permission-set, opens that set's command line access page. It saves a
// screenshot of each page to DIR (file names prefixed `idp-USER-` with --idp-initiated) and prints one
// JSON line to stdout:
//   {"portal": "<url>", "permission_sets": "<home text>", "sets": ["<set> in <account>", ...],
//    "credentials": {"AWS_ACCESS_KEY_ID": ..., ...}}   (credentials only with --permission-set)
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';

console.log = console.error;
const { values: args } = parseArgs({
  options: {
    url: { type: 'string' }, provider: { type: 'string' }, user: { type: 'string' },
    password: { type: 'string' }, 'permission-set': { type: 'string' }, out: { type: 'string' },
    'idp-initiated': { type: 'string' },
  },
});
mkdirSync(args.out, { recursive: true });

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  const prefix = args['idp-initiated'] ? `idp-${args.user}-` : '';
  const shot = (name) => page.screenshot({ path: `${args.out}/${prefix}${name}.png`, fullPage: true });
  if (args['idp-initiated']) {
    await page.goto(args['idp-initiated']);
  } else {
    await page.goto(`${args.url}/login`);
    await shot('1-rolegate-sign-in');
    await page.click(`a[data-provider="${args.provider}"]`);
  }
  await page.waitForSelector('#username');
  await shot('2-simplesamlphp-login');
  await page.fill('#username', args.user);
  await page.fill('#password', args.password);
  // SimpleSAMLphp answers with its auto-submitting POST page, which lands on rolegate's ACS and,
  // through its redirect, on the portal.
  await Promise.all([
    page.waitForURL(`${args.url}/portal**`, { timeout: 30000 }),
    page.click('#submit_button'),
  ]);
  await page.waitForLoadState();
  await shot('3-portal-home');
  const home = await page.textContent('main');
  const sets = (await page.locator('button[aria-label^="Command line access: "]').evaluateAll(
    (buttons) => buttons.map((b) => b.getAttribute('aria-label')))).map((l) => l.replace('Command line access: ', ''));
  const portal = page.url();
  const out = { portal, permission_sets: home, sets };
  if (args['permission-set']) {
    await page.getByRole('button', { name: `Command line access: ${args['permission-set']} in` }).click();
    await page.waitForSelector('pre#bash');
    await shot('4-command-line-access');
    const bash = await page.textContent('pre#bash');
    out.credentials = Object.fromEntries([...bash.matchAll(/export (AWS_[A-Z_]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  }
  process.stdout.write(JSON.stringify(out) + '\n');
} finally {
  await browser.close();
}
