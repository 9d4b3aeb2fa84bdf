// Drives Debian's headless Chromium through the broker's page, as a person would with the
// keyboard-usable form controls: sign in with the admin key, create a connection with the
// Authorize button (the playground's login and consent pages), see its state badge and bars,
// test it; add a webhook on the webhooks page (its secret shown once, a URL that breaks the host
// rule refused); open a connect link made over the API in a browser without a session, sign in at
// the org, land back in the workflow tool with the outcome, see the new connection healthy on
// the page and its `connection.created` delivered (signed with the secret the page showed);
// delete the webhook. Settings come from run.sh (which starts `forcelink serve --playground`
// with an info file and the stand-in workflow tool, tool.mjs).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const need = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run this through run.sh)`);
  return v;
};
const info = JSON.parse(readFileSync(need('INFO_FILE'), 'utf8'));
const base = info.broker_url.replace(/\/$/, '');
const key = info.admin_key;
const loginUrl = info.playground.login_url.replace(/\/$/, '');
const clientId = info.playground.client.client_id;
const clientSecret = info.playground.client.client_secret;
const username = info.playground.user.username;
const password = info.playground.user.password;
const toolUrl = need('TOOL_URL');
const screenshot = need('SCREENSHOT');
const timeout = 30_000;

const check = (cond, what) => {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
};

// Polls `probe` every 100 ms until it returns a truthy value or `timeout` passes.
const eventually = async (what, probe) => {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

// The org's login page (and consent page, when it asks): signs the playground's user in.
const signInAtOrg = async (page) => {
  await page.getByLabel('Username').waitFor();
  check(page.url().startsWith(loginUrl), `went to the org's authorize endpoint (${new URL(page.url()).pathname})`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: /log in/i }).click();
  const allow = page.getByRole('button', { name: 'Allow' });
  await Promise.race([allow.waitFor().catch(() => {}), page.waitForURL((u) => !u.href.startsWith(loginUrl))]);
  if (await allow.isVisible().catch(() => false)) {
    await allow.click();
  }
};

// Standard Webhooks: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the
// secret's base64 part.
const signedWith = (secret, delivery) => {
  const h = delivery.headers;
  const mac = createHmac('sha256', Buffer.from(secret.replace(/^whsec_/, ''), 'base64'))
    .update(`${h['webhook-id']}.${h['webhook-timestamp']}.${delivery.body}`)
    .digest();
  return h['webhook-signature'].split(' ').some((s) => {
    const [version, sig] = s.split(',');
    const got = Buffer.from(sig ?? '', 'base64');
    return version === 'v1' && got.length === mac.length && timingSafeEqual(got, mac);
  });
};

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  timeout,
});
try {
  const admin = await browser.newContext();
  const page = await admin.newPage();
  page.setDefaultTimeout(timeout);
  await page.goto(`${base}/`);
  check(page.url().endsWith('/login'), 'signed-out visitors land on the sign-in page');
  await page.getByLabel('Admin API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Connections' }).waitFor();
  check(await page.getByRole('link', { name: 'playground' }).isVisible(), 'the playground connection is listed');
  const playgroundRow = page.getByRole('row', { name: /playground/ });
  check(await playgroundRow.locator('[data-state]').count() === 1, 'the list shows the playground connection\'s state');

  // A connection signed in by a person: Authorize, the org's pages, back to its page.
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
  await signInAtOrg(page);
  await page.getByRole('heading', { name: 'Connection browser-web' }).waitFor();
  const state = page.locator('section[aria-labelledby="state-heading"]');
  check(await state.locator('[data-state="healthy"]').isVisible(), 'the new connection\'s state badge says healthy');
  check((await state.locator('[data-state]').innerText()).includes('Healthy'), 'the badge says its state in words');
  const approvals = page.getByRole('progressbar', { name: 'Approvals used' });
  check(await approvals.getAttribute('max') === '5', 'approvals used are a bar out of 5');
  check(Number(await approvals.getAttribute('value')) >= 1, 'the sign-in counts as an approval');
  check(await page.locator('[data-notes]').getByRole('cell', { name: 'sign-in', exact: true }).first().isVisible(), 'the sign-in is among the latest notes');
  check(await page.locator('[data-audit]').getByRole('cell', { name: 'login', exact: true }).first().isVisible(), 'the audit trail shows the sign-in');
  const reauthorize = page.locator('form[action$="/authorize"]');
  check(await reauthorize.getAttribute('method') === 'post', 'Re-authorize is a form POST carrying its CSRF token');
  check(await reauthorize.locator('input[name="csrf"]').count() === 1, 'the Re-authorize form has a CSRF field');

  await page.getByRole('button', { name: 'Test' }).click();
  await page.getByRole('status').filter({ hasText: 'Test passed' }).waitFor();
  check(true, 'Test passed on the connection page');
  check(await page.locator('[data-audit]').getByRole('cell', { name: 'connection.tested', exact: true }).isVisible(), 'the test is in the audit trail');
  await page.screenshot({ path: screenshot.replace(/\.png$/, '-detail.png'), fullPage: true });

  // Webhooks: a URL that breaks the host rule is refused, one at the tool is added.
  await page.getByRole('link', { name: 'Webhooks' }).click();
  await page.getByRole('heading', { name: 'Webhooks', exact: true }).waitFor();
  await page.getByLabel('URL', { exact: true }).fill('http://example.com/hook');
  await page.getByLabel('Events').fill('connection.*');
  await page.getByRole('button', { name: 'Add webhook' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  check((await alert.innerText()).includes('must be https'), 'a webhook URL that breaks the host rule shows why');
  await page.getByLabel('URL', { exact: true }).fill(`${toolUrl}/hook`);
  await page.getByRole('button', { name: 'Add webhook' }).click();
  const secretCode = page.locator('code[data-new-secret]');
  await secretCode.waitFor();
  const secret = (await secretCode.innerText()).trim();
  check(secret.startsWith('whsec_'), 'the new webhook\'s secret is shown');
  const hookRow = page.getByRole('row', { name: new RegExp(`${toolUrl}/hook`) });
  check(await hookRow.getByText('none yet').isVisible(), 'the new webhook is listed, with no delivery yet');
  // Opened again (a GET: reloading would post the form once more).
  await page.goto(`${base}/webhooks`);
  check(await page.locator('code[data-new-secret]').count() === 0, 'the secret is shown only once');
  check(await page.getByRole('row', { name: new RegExp(`${toolUrl}/hook`) }).count() === 1, 'one webhook at the tool');

  // A connect link, made over the API as a workflow tool would, opened by a person with no
  // session at the broker.
  const made = await fetch(`${base}/v1/connect-sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      connection: 'browser-link',
      environment: 'custom',
      login_url: loginUrl,
      client_id: clientId,
      client_secret: clientSecret,
      return_url: `${toolUrl}/done?tool=browser-test`,
    }),
  });
  check(made.status === 201, `a connect link was made (${made.status})`);
  const link = await made.json();
  const person = await browser.newContext();
  const linkPage = await person.newPage();
  linkPage.setDefaultTimeout(timeout);
  await linkPage.goto(link.url);
  await linkPage.getByRole('heading', { name: 'Connect browser-link to Salesforce' }).waitFor();
  await linkPage.getByRole('button', { name: 'Continue to Salesforce' }).click();
  await signInAtOrg(linkPage);
  await linkPage.waitForURL((u) => u.href.startsWith(`${toolUrl}/done`));
  const back = new URL(linkPage.url());
  check(back.searchParams.get('connection') === 'browser-link', 'the link returned to the tool naming the connection');
  check(back.searchParams.get('status') === 'success', 'the link returned to the tool with status=success');
  check(back.searchParams.get('tool') === 'browser-test', 'the return URL\'s own query is kept');
  await linkPage.goto(link.url);
  check(await linkPage.getByRole('heading', { name: 'Link not valid' }).isVisible(), 'the link works once');
  await person.close();

  await page.getByRole('link', { name: 'Connections' }).click();
  await page.getByRole('heading', { name: 'Connections' }).waitFor();
  const linkRow = page.getByRole('row', { name: /browser-link/ });
  check(await linkRow.locator('[data-state="healthy"]').isVisible(), 'the list shows browser-link healthy');
  const webRow = page.getByRole('row', { name: /browser-web/ });
  check(await webRow.locator('[data-state="healthy"]').isVisible(), 'the list shows browser-web healthy');
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshots: ${screenshot}, and -detail.png and -webhooks.png beside it`);

  // The webhook heard of it, signed with the secret the page showed, and the page says so.
  const created = await eventually('connection.created for browser-link at the tool', async () => {
    const got = await (await fetch(`${toolUrl}/received`)).json();
    return got.find((d) => {
      const body = JSON.parse(d.body);
      return body.type === 'connection.created' && body.data.connection === 'browser-link';
    });
  });
  check(signedWith(secret, created), 'the delivery verifies with the secret shown on the page');
  await page.getByRole('link', { name: 'Webhooks' }).click();
  await eventually('the webhooks page showing a delivery', async () => {
    await page.reload();
    return /delivered/.test(await page.getByRole('row', { name: new RegExp(`${toolUrl}/hook`) }).innerText());
  });
  check(true, 'the webhooks page shows the last delivery');
  await page.screenshot({ path: screenshot.replace(/\.png$/, '-webhooks.png'), fullPage: true });

  await page.getByRole('row', { name: new RegExp(`${toolUrl}/hook`) }).getByRole('button', { name: /Delete/ }).click();
  await page.getByText('No webhooks yet').waitFor();
  check(true, 'the webhook was deleted from the page');
} finally {
  await browser.close();
}
