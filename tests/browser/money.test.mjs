// The money side of the console in a real browser, on every backend and in both
// languages, with receipts real phones made: two `tandem field` phones make a visit with
// two cash receipts five days ago (the server's clock shifted back), the server is started
// again at today's 10:00 in Shanghai — its deposit check flags both receipts overdue — and
// the phones make today's visit with one receipt. The manager sees the OVERDUE receipts
// highlighted, marks today's receipt deposited with the keyboard alone, reads the
// receipt-number ranges and the reports (tables and charts), and downloads the XLSX. No
// raw message id nor string of the other language, no serious accessibility violation;
// every page screenshotted in both languages, at a laptop's width and a tablet's.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assertAccessible, assertOneLanguage, backends, browser, messages, shoot, startServer,
} from './support.mjs';
import { fieldTeam, fieldVisit } from './field.mjs';

const FILES = ['console.ftl', 'manage.ftl', 'money.ftl'];
const LOCALES = [
  { lang: 'zh-CN', locale: 'zh-CN', other: 'en' },
  { lang: 'en', locale: 'en-US', other: 'zh-CN' },
];
const DAY_MS = 86_400_000;
const FORMULA = '=HYPERLINK("http://evil.example","点我")';

let chrome;
before(async () => {
  chrome = await browser();
});
after(async () => {
  await chrome?.close();
});

/** The clock shift that puts a server at 10:00 in Shanghai (02:00 UTC) today. */
function tenTodayOffsetMs() {
  const now = Date.now();
  return now - (now % DAY_MS) + 2 * 3_600_000 - now;
}

/** The server's day (today's 10:00 in Shanghai is the same day in UTC) `n` days from
 *  today, `YYYY-MM-DD`. */
function day(n) {
  return new Date(Date.now() + tenTodayOffsetMs() + n * DAY_MS).toISOString().slice(0, 10);
}

/** Presses Tab until the field named `name` has the focus (a date field takes a Tab per
 *  part of the date). */
async function tabTo(page, name) {
  for (let i = 0; i < 8; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((n) => document.activeElement?.getAttribute('name') === n, name)) return;
  }
  assert.fail(`Tab never reached the ${name} field`);
}

/** Signs the manager in through the form, by the keyboard. */
async function signIn(page, server) {
  await page.goto(`${server.base}/login`);
  await page.locator('input[name=login]').focus();
  await page.keyboard.type('manager');
  await page.keyboard.press('Tab');
  await page.keyboard.type(server.users.get('manager'));
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/requests$/);
}

for (const backend of backends()) {
  test(`a manager reconciles receipts and reads the reports (${backend.label})`, async () => {
    const phones = mkdtempSync(join(tmpdir(), 'tandem-phones-'));
    let server = await startServer(backend, { offsetMs: tenTodayOffsetMs() - 5 * DAY_MS });
    try {
      const team = await fieldTeam(server, phones);
      await fieldVisit(server, team, 'PJ-2026-0001', [['林晓虹', 50_000], [FORMULA, 12_345]]);
      await server.stop({ keep: true });
      server = await startServer(backend, { offsetMs: tenTodayOffsetMs(), reuse: server });
      await fieldVisit(server, team, 'PJ-2026-0001', [['王建国', 123_456]]);

      for (const { lang, locale, other } of LOCALES) {
        const what = `${backend.label} ${lang}`;
        const text = messages(lang, FILES);
        const context = await chrome.newContext({ locale, viewport: { width: 1280, height: 800 }, acceptDownloads: true });
        const page = await context.newPage();
        const dialogs = [];
        page.on('dialog', async (d) => {
          dialogs.push(d.message());
          await d.dismiss();
        });
        await signIn(page, server);
        await page.getByRole('link', { name: text.get('nav-receipts') }).click();
        await page.waitForURL(/\/receipts$/);
        // The deposit check ran when the server started again: both of the first visit's
        // receipts are OVERDUE, highlighted. (It runs beside the server: wait for it.)
        for (let i = 0; i < 50 && (await page.locator('tr.receipt-overdue').count()) < 2; i++) {
          await page.waitForTimeout(200);
          await page.reload();
        }
        const overdue = page.locator('tr.receipt-overdue');
        assert.equal(await overdue.count(), 2, what);
        const background = await overdue.first().evaluate((el) => getComputedStyle(el).backgroundColor);
        assert.notEqual(background, 'rgba(0, 0, 0, 0)', `${what}: the overdue row stands out`);
        assert.ok((await overdue.first().innerText()).includes(FORMULA), `${what}: a payer's text shown as is`);
        assert.ok((await page.locator('#receipt-0000000001').innerText()).includes('¥500.00'), what);
        await assertOneLanguage(page, lang, other, `${what} receipts`, FILES);

        const today = page.locator('#deposit-0000000003');
        if (lang === 'zh-CN') {
          await shoot(page, `receipts-${lang}`, `${what} receipts`);
          // The keyboard alone: into the reference, past the date (today, filled in),
          // the amount, Enter.
          await today.getByLabel(text.get('deposit-reference')).focus();
          await page.keyboard.type('ICBC-20261203-0457');
          await tabTo(page, 'amount');
          await page.keyboard.type('1234');
          const refused = page.waitForResponse((r) => r.request().method() === 'POST');
          await page.keyboard.press('Enter');
          // Short of the receipt's amount: refused in the page's language, values kept.
          assert.equal((await refused).status(), 422, what);
          await page.locator('[role=alert]').first().waitFor();
          assert.ok((await page.locator('[role=alert]').first().innerText()).includes(text.get('deposit-bad-amount')), what);
          await assertOneLanguage(page, lang, other, `${what} refused deposit`, FILES);
          await shoot(page, `receipts-refused-${lang}`, `${what} refused deposit`);
          const amount = page.locator('#deposit-0000000003').getByLabel(text.get('deposit-amount'));
          await amount.focus();
          await page.keyboard.press('Control+A');
          await page.keyboard.type('1,234.56');
          await page.keyboard.press('Enter');
          await page.waitForURL(/done=3/);
          assert.ok((await page.locator('[role=status]').innerText()).length > 0, what);
        }
        const row = await page.locator('#receipt-0000000003').innerText();
        assert.ok(row.includes('ICBC-20261203-0457'), `${what}: ${row}`);
        assert.equal(await page.locator('#deposit-0000000003').count(), 0, what);
        await shoot(page, `receipts-deposited-${lang}`, `${what} receipts after the deposit`);

        await page.getByRole('link', { name: text.get('receipts-ranges-link') }).click();
        await page.waitForURL(/\/receipts\/ranges$/);
        const range = await page.locator('tbody tr').first().innerText();
        assert.ok(range.includes('0000000001'), `${what}: ${range}`);
        await assertOneLanguage(page, lang, other, `${what} ranges`, FILES);
        await shoot(page, `ranges-${lang}`, `${what} ranges`);

        await page.getByRole('link', { name: text.get('nav-reports') }).click();
        await page.waitForURL(/\/reports$/);
        // This month by default; the first visit may fall in the last: the past week.
        await page.getByLabel(text.get('money-filter-from'), { exact: true }).fill(day(-6));
        await page.getByLabel(text.get('money-filter-to'), { exact: true }).fill(day(0));
        await page.getByRole('button', { name: text.get('reports-show') }).click();
        await page.waitForURL(/\/reports\?/);
        assert.equal(await page.locator('figure.chart svg').count(), 2, `${what}: two charts`);
        for (const chart of await page.locator('figure.chart svg').all()) {
          assert.ok(await chart.isVisible(), `${what}: chart shown`);
          const box = await chart.boundingBox();
          assert.ok(box.width > 300 && box.height > 100, `${what}: chart size ${JSON.stringify(box)}`);
        }
        const totals = await page.locator('tfoot tr').innerText();
        assert.ok(totals.includes('¥1,858.01'), `${what}: collected ${totals}`);
        assert.ok(totals.includes('¥1,234.56'), `${what}: deposited ${totals}`);
        assert.equal(await page.locator('tr.receipt-overdue').count(), 2, what);
        await assertOneLanguage(page, lang, other, `${what} reports`, FILES);
        await shoot(page, `reports-${lang}`, `${what} reports`);
        const [download] = await Promise.all([
          page.waitForEvent('download'),
          page.getByRole('link', { name: text.get('money-download-xlsx') }).click(),
        ]);
        assert.match(download.suggestedFilename(), /^tandem-reports-\d{8}_\d{8}\.xlsx$/, what);
        const xlsx = readFileSync(await download.path());
        assert.equal(xlsx.subarray(0, 2).toString('latin1'), 'PK', `${what}: an XLSX (a ZIP)`);
        assert.deepEqual(dialogs, [], `${what}: no script ran`);

        const axe = await chrome.newContext({ locale, bypassCSP: true, storageState: await context.storageState() });
        for (const path of ['/receipts', '/receipts/ranges', '/reports']) {
          await assertAccessible(axe, `${server.base}${path}`, `${what} ${path}`);
        }
        await axe.close();
        await context.close();
      }
    } finally {
      await server.stop();
      rmSync(phones, { recursive: true, force: true });
    }
  });
}
