// Retention, legal hold and destruction (E04) in a real browser, on every backend and in both
// languages: legal staff find the page in the navigation, place a hold on a case by its
// reference, see a destruction request refused while nothing is left to destroy, read the
// list of holds and lift the hold with a reason. Every page and state is screenshotted,
// checked by axe-core, and checked for raw message ids and strings of the other language.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertAccessibleHere,
  assertOneLanguage,
  backends,
  browser,
  shoot,
  startServer,
} from './support.mjs';

const LOCALES = [
  { lang: 'zh-CN', locale: 'zh-CN', other: 'en' },
  { lang: 'en', locale: 'en-US', other: 'zh-CN' },
];
const FILES = ['console.ftl', 'retention.ftl'];

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
  await shoot(page, `retention-${name}-${lang}`, `${what} ${name}`);
}

/** Clicks something that posts a form; resolves with the status of the answer to the post
 *  (before any redirect is followed). */
async function posting(page, act) {
  const answer = page.waitForResponse((r) => r.request().method() === 'POST');
  await act();
  const status = (await answer).status();
  await page.waitForLoadState('load');
  return status;
}

for (const backend of backends()) {
  test(`retention pages: hold, refusal, lift (${backend.label})`, async () => {
    const server = await startServer(backend);
    try {
      for (const [round, loc] of LOCALES.entries()) {
        const { lang, locale } = loc;
        const what = `${backend.label} ${lang}`;
        const context = await chrome.newContext({ locale, viewport: { width: 1280, height: 800 } });
        const page = await context.newPage();
        await page.goto(`${server.base}/login`);
        await page.fill('#login', 'legal');
        await page.fill('#password', server.users.get('legal'));
        await page.click('button.primary');
        await page.waitForLoadState('load');

        // The navigation offers the page to legal staff.
        await page.click('.nav a[href="/retention"]');
        await page.waitForURL(/\/retention$/);
        assert.equal(await page.locator('.nav a[aria-current="page"]').getAttribute('href'), '/retention');
        await record(page, loc, 'overview', what);

        // A hold on a whole case, by its reference.
        await page.selectOption('#hold-kind', 'case');
        await page.fill('#hold-subject', 'PJ-2026-0001');
        await page.fill('#hold-reference', `(2026)沪0101民初12${round}号`);
        await page.fill('#hold-reason', round === 0 ? '诉讼中，证据须保全' : 'Litigation pending');
        assert.equal(await posting(page, () => page.click('form[action="/retention/holds"] button')), 303, what);
        await page.waitForURL(/done=hold-placed$/);
        assert.equal(await page.locator('tr[id^="hold-row-"]').count(), 1, `${what}: one hold in force`);
        await record(page, loc, 'held', what);

        // A destruction of a case without evidence: refused, the form kept.
        await page.selectOption('#destroy-kind', 'case');
        await page.fill('#destroy-subject', 'PJ-2026-0002');
        await page.fill('#destroy-reference', 'PJ-L-2026-9');
        await page.fill('#destroy-reason', round === 0 ? '银行要求销毁' : 'The bank asked');
        assert.equal(
          await posting(page, () => page.click('form[action="/retention/destructions"] button')),
          422,
          what,
        );
        assert.ok(await page.locator('#destroy-error').isVisible(), `${what}: the refusal shown`);
        assert.equal(await page.locator('#destroy-subject').inputValue(), 'PJ-2026-0002', what);
        await record(page, loc, 'refused', what);

        // The hold is lifted by a person, with a reason; the list keeps it.
        await page.goto(`${server.base}/retention`);
        await page.locator('.lift-form input[name="reason"]').fill(round === 0 ? '已结案' : 'Case closed');
        assert.equal(await posting(page, () => page.click('.lift-form button')), 303, what);
        await page.waitForURL(/done=hold-lifted$/);
        assert.equal(await page.locator('tr[id^="hold-row-"]').count(), 0, `${what}: none in force`);
        await page.goto(`${server.base}/retention/holds`);
        assert.equal(await page.locator('tr[id^="hold-row-"]').count(), round + 1, `${what}: kept`);
        await record(page, loc, 'holds', what);
        await context.close();
      }
    } finally {
      await server.stop();
    }
  });
}
