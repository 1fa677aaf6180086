// The administrators' pages in a real browser, on every backend and in both languages: the
// admin lands on the users' page, creates a user (the one-time password shown once), creates
// an agent, issues an enrolment code (its QR code drawn inline, holding the server and the
// code), a real `tandem field` phone enrols with it, the admin revokes that phone; the
// bank's policy is changed with the keyboard alone (a retention under two years refused
// first, field by field); the audit log lists it all. Every page and state is screenshotted,
// checked by axe-core, and checked for raw message ids and strings of the other language.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assertAccessibleHere,
  assertOneLanguage,
  backends,
  browser,
  shoot,
  startServer,
  tandem,
} from './support.mjs';

const LOCALES = [
  { lang: 'zh-CN', locale: 'zh-CN', other: 'en' },
  { lang: 'en', locale: 'en-US', other: 'zh-CN' },
];
const FILES = ['console.ftl', 'manage.ftl', 'admin.ftl'];

let chrome;
before(async () => {
  chrome = await browser();
});
after(async () => {
  await chrome?.close();
});

/** Checks the page in its language and for accessibility, and screenshots it. */
async function record(page, { lang, other }, name, what) {
  await assertOneLanguage(page, lang, other, `${what} ${name}`, FILES);
  await assertAccessibleHere(page, `${what} ${name}`);
  await shoot(page, `admin-${name}-${lang}`, `${what} ${name}`);
}

/** Clicks (or presses Enter in) something that posts a form; resolves with the status of
 *  the answer to the post (before any redirect is followed). */
async function posting(page, act) {
  const answer = page.waitForResponse((r) => r.request().method() === 'POST');
  await act();
  const status = (await answer).status();
  await page.waitForLoadState('load');
  return status;
}

/** Replaces the value of the focused field with the keyboard. */
async function retype(page, text) {
  await page.keyboard.press('Control+A');
  await page.keyboard.type(text);
}

for (const backend of backends()) {
  test(`admin pages: users, agents and phones, policy, audit (${backend.label})`, async () => {
    const server = await startServer(backend);
    const phones = mkdtempSync(join(tmpdir(), 'tandem-phones-'));
    try {
      for (const [round, loc] of LOCALES.entries()) {
        const { lang, locale } = loc;
        const what = `${backend.label} ${lang}`;
        const context = await chrome.newContext({ locale, viewport: { width: 1280, height: 800 } });
        const page = await context.newPage();

        // Sign in: the start page of an admin is the users' page, and the navigation offers
        // the administration.
        await page.goto(`${server.base}/login`);
        await page.fill('#login', 'admin');
        await page.fill('#password', server.users.get('admin'));
        await page.click('button.primary');
        await page.waitForURL(/\/requests$/);
        await page.goto(`${server.base}/`);
        await page.waitForURL(/\/admin\/users$/);
        assert.equal(await page.locator('.nav a[aria-current="page"]').getAttribute('href'), '/admin/users');
        await record(page, loc, 'users', what);

        // A new user: the one-time password is on the answer, once.
        await page.fill('#login', `li.na.${round}`);
        await page.fill('#name', round === 0 ? '李娜' : 'Li Na');
        await page.selectOption('#role', 'legal');
        assert.equal(await posting(page, () => page.click('form[action="/admin/users"] button')), 201, what);
        const password = (await page.locator('#initial-password').innerText()).trim();
        assert.match(password, /^[a-z0-9]{16}$/, what);
        await record(page, loc, 'user-created', what);
        await page.click(`a[href^="/admin/users/"]`);
        await page.waitForURL(/\/admin\/users\/[0-9a-f-]+$/);
        assert.ok(!(await page.content()).includes(password), `${what}: shown once`);
        await record(page, loc, 'user', what);

        // A new agent, then a code for their phone with its QR code.
        await page.goto(`${server.base}/admin/agents`);
        await page.fill('#employee_no', `PJ-90${round}`);
        await page.fill('#name', round === 0 ? '赵六' : 'Zhao Liu');
        assert.equal(await posting(page, () => page.click('form[action="/admin/agents"] button')), 303, what);
        await page.waitForURL(/\/admin\/agents\/[0-9a-f-]+\?done=created$/);
        const agentUrl = page.url().split('?')[0];
        await record(page, loc, 'agent', what);
        assert.equal(await posting(page, () => page.click('form[action$="/code"] button')), 200, what);
        const code = await page.locator('p.code').getAttribute('aria-label');
        assert.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/, what);
        assert.equal((await page.locator('p.code').innerText()).replace(/\s/g, ''), code.replace(/-/g, ''), what);
        const qr = page.locator('svg.qr');
        assert.ok(await qr.isVisible(), `${what}: the QR code is drawn`);
        const box = await qr.boundingBox();
        assert.ok(box.width >= 200 && box.height >= 200, `${what}: QR ${box.width}x${box.height}`);
        const path = await qr.locator('path').getAttribute('d');
        assert.ok(path.split('M').length > 100, `${what}: the QR code has modules`);
        const payload = await page.locator('code.payload').innerText();
        assert.equal(
          payload,
          `tandem-enroll:?server=${encodeURIComponent(server.base)}&code=${code}`,
          what,
        );
        await record(page, loc, 'code', what);

        // A real phone enrols with the code, and the admin revokes it with a reason.
        const dir = join(phones, `phone-${round}`);
        execFileSync(tandem, ['field', '--dir', dir, 'enroll', code, '--server', server.base, '--json']);
        await page.goto(agentUrl);
        const reason = page.locator('input[name="reason"]');
        assert.equal(await reason.count(), 1, `${what}: one live phone`);
        await reason.focus();
        await page.keyboard.type(round === 0 ? '手机遗失' : 'Phone lost');
        assert.equal(await posting(page, () => page.keyboard.press('Enter')), 303, what);
        await page.waitForURL(/done=revoked$/);
        assert.equal(await page.locator('input[name="reason"]').count(), 0, `${what}: revoked`);
        await record(page, loc, 'revoked', what);
        await page.goto(`${server.base}/admin/agents`);
        await record(page, loc, 'agents', what);

        // The policy, by keyboard alone: a retention under two years is refused (E04).
        await page.goto(`${server.base}/admin/policy`);
        await record(page, loc, 'policies', what);
        await page.click('table a');
        await page.waitForURL(/\/admin\/policy\/[0-9a-f-]+$/);
        await record(page, loc, 'policy', what);
        await page.focus('#retention_days');
        await retype(page, '365');
        await page.focus('#geofence_radius_m');
        await retype(page, String(250 + round));
        assert.equal(await posting(page, () => page.keyboard.press('Enter')), 422, what);
        assert.equal(await page.locator('#retention_days').getAttribute('aria-invalid'), 'true', what);
        assert.match(await page.locator('#retention_days-error').innerText(), /E04/, what);
        await record(page, loc, 'policy-refused', what);
        await page.focus('#retention_days');
        await retype(page, '1095');
        assert.equal(await posting(page, () => page.keyboard.press('Enter')), 303, what);
        await page.waitForURL(/done=saved$/);
        assert.equal(await page.locator('#geofence_radius_m').inputValue(), String(250 + round), what);
        assert.equal(await page.locator('#retention_days').inputValue(), '1095', what);
        await record(page, loc, 'policy-saved', what);

        // The audit log: everything above, newest first, filtered by action.
        await page.goto(`${server.base}/admin/audit`);
        assert.ok((await page.locator('tbody tr').count()) >= 5 * (round + 1), `${what}: audited`);
        await record(page, loc, 'audit', what);
        await page.selectOption('#action', 'device-revoked');
        await page.click('form[role="search"] button');
        await page.waitForURL(/action=device-revoked/);
        assert.equal(await page.locator('tbody tr').count(), round + 1, `${what}: filtered`);
        await record(page, loc, 'audit-filtered', what);
        await context.close();
      }
    } finally {
      await server.stop();
      rmSync(phones, { recursive: true, force: true });
    }
  });
}
