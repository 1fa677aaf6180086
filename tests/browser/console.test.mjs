// The console in a real browser, on every backend and in both languages: sign-in by the
// keyboard alone, the requests queue, markup in a field shown as text with no script run,
// no raw message id or string of the other language on any page, and no serious or
// critical accessibility violation (axe-core). Every page is screenshotted in both
// languages under target/browser-screenshots/.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  api,
  assertAccessible,
  assertOneLanguage,
  backends,
  browser,
  messages,
  shoot,
  startServer,
} from './support.mjs';

const LOCALES = [
  { lang: 'zh-CN', locale: 'zh-CN', other: 'en' },
  { lang: 'en', locale: 'en-US', other: 'zh-CN' },
];
const DAY_MS = 86_400_000;
const XSS = '<img src=x onerror=alert(1)>';

let chrome;
before(async () => {
  chrome = await browser();
});
after(async () => {
  await chrome?.close();
});

for (const backend of backends()) {
  test(`a manager signs in with the keyboard and reads the queue (${backend.label})`, async () => {
    const server = await startServer(backend);
    try {
      const me = await api(server, 'manager', 'GET', '/v1/me');
      const cases = await api(server, 'manager', 'GET', `/v1/banks/${me.bank_ids[0]}/cases`);
      const now = Date.now();
      for (const [i, purpose] of [`首次外访，核实居住地址 ${XSS}`, '了解还款意愿'].entries()) {
        await api(server, 'manager', 'POST', '/v1/visit-requests', {
          case_id: cases[i].id,
          wanted_from_ms: now,
          wanted_until_ms: now + 2 * DAY_MS,
          purpose,
        });
      }
      for (const { lang, locale, other } of LOCALES) {
        const what = `${backend.label} ${lang}`;
        const context = await chrome.newContext({ locale, viewport: { width: 1280, height: 800 } });
        const page = await context.newPage();
        const dialogs = [];
        page.on('dialog', async (d) => {
          dialogs.push(d.message());
          await d.dismiss();
        });
        await page.goto(`${server.base}/`);
        assert.match(page.url(), /\/login$/, what);
        assert.equal(await page.getAttribute('html', 'lang'), lang, what);
        await assertOneLanguage(page, lang, other, `${what} sign-in`);
        await shoot(page, `signin-${lang}`, `${what} sign-in`);

        // The keyboard alone: the name field has the focus, Tab to the password, Enter.
        await page.keyboard.type('manager');
        await page.keyboard.press('Tab');
        await page.keyboard.type('not-the-password');
        const refused = page.waitForResponse((r) => r.request().method() === 'POST');
        await page.keyboard.press('Enter');
        assert.equal((await refused).status(), 422, what);
        // The form again, saying why (the alert exists only on the answer's page).
        await page.locator('[role=alert]').waitFor();
        await page.waitForLoadState('load');
        assert.ok((await page.locator('[role=alert]').innerText()).length > 0, what);
        await assertOneLanguage(page, lang, other, `${what} refused sign-in`);
        await shoot(page, `signin-refused-${lang}`, `${what} refused sign-in`);
        // The name is kept and the password field has the focus.
        await page.keyboard.type(server.users.get('manager'));
        await page.keyboard.press('Enter');
        await page.waitForURL(/\/requests$/);

        await assertOneLanguage(page, lang, other, `${what} requests`);
        const rows = page.locator('tbody tr');
        assert.equal(await rows.count(), 2, what);
        assert.ok((await rows.first().innerText()).includes(cases[0].case_ref), what);
        // Actor: anyone putting markup into a field a manager reads: it shows as text.
        assert.ok((await rows.first().innerText()).includes(XSS), what);
        assert.equal(await page.locator('tbody img').count(), 0, what);
        await shoot(page, `requests-${lang}`, `${what} requests`);
        assert.deepEqual(dialogs, [], `${what}: no script ran`);

        const axe = await chrome.newContext({ locale, bypassCSP: true, storageState: await context.storageState() });
        await assertAccessible(axe, `${server.base}/login`, `${what} sign-in`);
        await assertAccessible(axe, `${server.base}/requests`, `${what} requests`);
        await axe.close();

        // Signing out ends the session: the queue sends the browser back to sign in.
        await page.getByRole('button', { name: messages(lang).get('nav-sign-out') }).click();
        await page.waitForURL(/\/login\?why=out$/);
        await page.goto(`${server.base}/requests`);
        assert.match(page.url(), /\/login$/, what);
        await context.close();
      }
    } finally {
      await server.stop();
    }
  });
}
