// Account security (A01) in a real browser, on every backend and in both languages: five
// wrong passwords lock the account (the right one is then refused too); a sign-in in a
// second browser ends the first one's session, which is told why on its next click; a
// month-old password must be changed first, refused when weak, after which the console
// opens. Every new page and state is screenshotted, checked by axe-core, and checked for raw
// message ids and strings of the other language.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertAccessibleHere,
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

let chrome;
before(async () => {
  chrome = await browser();
});
after(async () => {
  await chrome?.close();
});

/** The text of message `id` before its first placeable. */
function lead(lang, id) {
  return messages(lang).get(id).split('{')[0].trim();
}

/** Fills and sends the sign-in form; resolves with the answer's status. */
async function signIn(page, server, login, password) {
  if (!/\/login/.test(page.url())) await page.goto(`${server.base}/login`);
  await page.fill('#login', login);
  await page.fill('#password', password);
  const answer = page.waitForResponse((r) => r.request().method() === 'POST');
  await page.click('button.primary');
  const status = (await answer).status();
  await page.waitForLoadState('load');
  return status;
}

/** Checks the page in its language and for accessibility, and screenshots it. */
async function record(page, { lang, other }, name, what) {
  await assertOneLanguage(page, lang, other, what);
  await assertAccessibleHere(page, what);
  await shoot(page, `${name}-${lang}`, what);
}

for (const backend of backends()) {
  test(`A01: lockout, one session per account, password expiry (${backend.label})`, async () => {
    const server = await startServer(backend);
    let managerPassword = server.users.get('manager');
    try {
      for (const [round, loc] of LOCALES.entries()) {
        const { lang, locale } = loc;
        const what = `${backend.label} ${lang}`;
        const context = () => chrome.newContext({ locale, viewport: { width: 1280, height: 800 } });
        // Each language starts with no lock (the first one locked the account).
        server.sql('DELETE FROM login_failures');

        // Two accounts trade places between the rounds: the one locked in the first round
        // still has its failures counted by the server's in-memory throttle.
        const [locked, replaced] = round === 0 ? ['legal', 'admin'] : ['admin', 'legal'];

        // Actor: anyone guessing passwords: five wrong ones lock the account.
        const guesser = await context();
        const page = await guesser.newPage();
        await page.goto(`${server.base}/login`);
        for (let i = 1; i <= 5; i++) {
          const status = await signIn(page, server, locked, `wrong-password-${i}`);
          assert.equal(status, i < 5 ? 422 : 429, `${what}: attempt ${i}`);
        }
        assert.equal(await signIn(page, server, locked, server.users.get(locked)), 429, what);
        const alert = await page.locator('[role=alert]').innerText();
        assert.ok(alert.startsWith(lead(lang, 'signin-locked')), `${what}: ${alert}`);
        assert.match(page.url(), /\/login$/, what);
        await record(page, loc, 'signin-locked', `${what} locked`);
        await guesser.close();

        // Actor: a thief of a password signing in alongside the user: one session only.
        // Legal staff start at the evidence search, an admin at the requests queue.
        const [start, startLink] = replaced === 'legal'
          ? [/\/evidence$/, 'nav-evidence']
          : [/\/requests$/, 'nav-requests'];
        const first = await context();
        const firstPage = await first.newPage();
        await signIn(firstPage, server, replaced, server.users.get(replaced));
        await firstPage.waitForURL(start);
        const second = await context();
        const secondPage = await second.newPage();
        await signIn(secondPage, server, replaced, server.users.get(replaced));
        await secondPage.waitForURL(start);
        // The first browser's next click lands on the sign-in form, saying why.
        await firstPage.getByRole('link', { name: messages(lang).get(startLink) }).click();
        await firstPage.waitForURL(/\/login\?why=elsewhere$/);
        const told = await firstPage.locator('[role=alert]').innerText();
        assert.equal(told, messages(lang).get('signin-elsewhere'), what);
        await record(firstPage, loc, 'signin-elsewhere', `${what} replaced`);
        await first.close();
        await second.close();

        // A month-old password: nothing opens before it is changed.
        const old = Date.now() - 31 * DAY_MS;
        server.sql(`UPDATE users SET password_changed_ms = ${old} WHERE login = 'manager'`);
        const ctx = await context();
        const manager = await ctx.newPage();
        await signIn(manager, server, 'manager', managerPassword);
        await manager.waitForURL(/\/password$/);
        const expired = await manager.locator('[role=alert]').innerText();
        assert.ok(expired.startsWith(lead(lang, 'password-expired')), `${what}: ${expired}`);
        await manager.goto(`${server.base}/requests`);
        assert.match(manager.url(), /\/password$/, `${what}: the queue waits`);
        await record(manager, loc, 'password-expired', `${what} expired`);

        // A weak new password is refused, field by field; the keyboard alone fills the form.
        await manager.focus('#current');
        await manager.keyboard.type(managerPassword);
        await manager.keyboard.press('Tab');
        await manager.keyboard.type('manager-2');
        await manager.keyboard.press('Tab');
        await manager.keyboard.type('manager-2');
        const refused = manager.waitForResponse((r) => r.request().method() === 'POST');
        await manager.keyboard.press('Enter');
        assert.equal((await refused).status(), 422, what);
        await manager.waitForLoadState('load');
        const newError = await manager.locator('#new-error').innerText();
        assert.ok(newError.includes(lead(lang, 'password-error-short')), `${what}: ${newError}`);
        assert.ok(newError.includes(messages(lang).get('password-error-login')), `${what}: ${newError}`);
        assert.equal(await manager.getAttribute('#new', 'aria-invalid'), 'true', what);
        await record(manager, loc, 'password-refused', `${what} refused`);

        // A good one: done, and the console opens.
        const good = round === 0 ? '外访管理-春季-新口令-2026' : 'autumn-visits-new-pass-2026';
        await manager.fill('#current', managerPassword);
        await manager.fill('#new', good);
        await manager.fill('#confirm', good);
        await manager.click('button.primary');
        await manager.waitForURL(/\/password\?changed=1$/);
        managerPassword = good;
        const done = await manager.locator('[role=status]').innerText();
        assert.equal(done, messages(lang).get('password-changed'), what);
        await record(manager, loc, 'password-changed', `${what} changed`);
        await manager.getByRole('link', { name: messages(lang).get('password-continue') }).click();
        await manager.waitForURL(/\/requests$/);
        await assertOneLanguage(manager, lang, loc.other, `${what} console after the change`);
        await ctx.close();
      }
    } finally {
      await server.stop();
    }
  });
}
