// Drives Debian's headless Chromium through the broker's page, as a person would with the
// keyboard-usable form controls: sign in with the admin key, create a connection with the
// Authorize button (the playground's login and consent pages), see it green, test it, and
// save a screenshot. Settings come from run.sh (which starts `forcelink serve --playground`).
import { chromium } from 'playwright-core';

const need = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run this through run.sh)`);
  return v;
};
const base = need('BROKER_URL');
const key = need('ADMIN_KEY');
const loginUrl = need('ORG_LOGIN_URL');
const clientId = need('CLIENT_ID');
const clientSecret = need('CLIENT_SECRET');
const username = need('ORG_USERNAME');
const password = need('ORG_PASSWORD');
const screenshot = need('SCREENSHOT');
const timeout = 30_000;

const check = (cond, what) => {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
};

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  timeout,
});
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(timeout);
  await page.goto(`${base}/`);
  check(page.url().endsWith('/login'), 'signed-out visitors land on the sign-in page');
  await page.getByLabel('Admin API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Connections' }).waitFor();
  check(await page.getByRole('link', { name: 'playground' }).isVisible(), 'the playground connection is listed');

  await page.getByRole('link', { name: 'New connection' }).first().click();
  await page.getByRole('heading', { name: 'New connection' }).waitFor();
  check(await page.getByLabel('Sign-in method').inputValue() === 'web', 'the web-server flow is the default method');
  await page.getByLabel('Nickname').fill('browser-web');
  await page.getByLabel('Environment').selectOption('custom');
  await page.getByLabel('Custom domain').fill(loginUrl);
  await page.getByLabel('Consumer key (client id)').fill(clientId);
  await page.getByLabel('Consumer secret').fill(clientSecret);
  await page.getByRole('button', { name: 'Authorize' }).click();

  // A page moves the browser on to the org (form-action 'self' forbids redirecting a form
  // submission to another origin); then the org's pages (the playground's stand-ins for Salesforce's).
  await page.getByLabel('Username').waitFor();
  check(page.url().startsWith(loginUrl), 'Authorize went to the org\'s authorize endpoint');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: /log in/i }).click();
  const allow = page.getByRole('button', { name: 'Allow' });
  if (await allow.isVisible().catch(() => false)) {
    await allow.click();
  }
  await page.getByRole('heading', { name: 'Connection browser-web' }).waitFor();
  check(await page.locator('[data-health="green"]').isVisible(), 'the new connection is green on its page');
  const reauthorize = page.locator('form[action$="/authorize"]');
  check(await reauthorize.getAttribute('method') === 'post', 'Re-authorize is a form POST carrying its CSRF token');
  check(await reauthorize.locator('input[name="csrf"]').count() === 1, 'the Re-authorize form has a CSRF field');

  await page.getByRole('button', { name: 'Test' }).click();
  await page.getByText('Test passed').waitFor();
  check(true, 'Test passed on the connection page');

  await page.getByRole('link', { name: 'Connections' }).click();
  await page.getByRole('heading', { name: 'Connections' }).waitFor();
  const row = page.getByRole('row', { name: /browser-web/ });
  check(await row.locator('[data-health="green"]').isVisible(), 'the list shows browser-web green');
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);
} finally {
  await browser.close();
}
