// A visit manager's day in a real browser, on every backend: imports the bank's case file
// through the form, asks for a visit, approves it with a two-agent team and cash by the
// keyboard alone; two `tandem field` phones sync, visit, co-sign receipts, seal and push;
// the visit then shows as accepted. Every page is screenshotted in zh-CN and English,
// checked for raw message ids and the other language's strings, and by axe-core.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  api,
  assertAccessible,
  assertOneLanguage,
  backends,
  browser,
  messages,
  shoot,
  startServer,
  tabTo,
} from './support.mjs';
import { AT_THE_DOOR, DOOR_E7, FieldPhone, PHOTO, coSign, signaturePng } from './field.mjs';

const DAY_MS = 86_400_000;
const XSS = '<img src=x onerror=alert(1)>';

let chrome;
before(async () => {
  chrome = await browser();
});
after(async () => {
  await chrome?.close();
});

/** The bank's case file: three cases, the first at the demo's door. */
function caseFile(nowMs) {
  const rows = [
    ['BR-0001', '6222020200001234561', '林晓虹', '310101198805120026'],
    ['BR-0002', '6222020200001234572', XSS, '31011519790304561X'],
    ['BR-0003', '6222020200001234583', '周文静', '110101199003071234'],
  ];
  const header =
    'case_ref,card_number,debtor_name,id_number,outstanding_fen,entrustment_start_ms,' +
    'entrustment_end_ms,address_1,lat_e7_1,lon_e7_1,datum_1';
  const lines = rows.map(
    ([ref, card, name, id], i) =>
      `${ref},${card},"${name}",${id},${(i + 1) * 1_234_567},${nowMs - DAY_MS},` +
      `${nowMs + 180 * DAY_MS},上海市黄浦区南京东路${300 + i}号,${DOOR_E7.lat},${DOOR_E7.lon},gcj02`,
  );
  return `${header}\n${lines.join('\n')}\n`;
}

/** `2026-12-03T10:05` in Shanghai for UTC ms. */
function shanghaiInput(ms) {
  return new Date(ms + 8 * 3_600_000).toISOString().slice(0, 16);
}

for (const backend of backends()) {
  test(`a manager imports cases, approves a visit by the keyboard, and its evidence arrives (${backend.label})`, { timeout: 300_000 }, async () => {
    // 02:00 UTC today is 10:00 in Shanghai: inside the bank's visiting hours.
    const now = Date.now();
    const offset = now - (now % DAY_MS) + 2 * 3_600_000 - now;
    const server = await startServer(backend, { offsetMs: offset });
    const serverNow = () => Date.now() + offset;
    const what = backend.label;
    try {
      const work = join(server.dir, 'work');
      mkdirSync(work, { recursive: true });
      const lead = new FieldPhone(join(server.dir, 'lead-phone'));
      const partner = new FieldPhone(join(server.dir, 'partner-phone'));
      const a = await lead.ok(server, ['enroll', server.codes[0]]);
      const p = await partner.ok(server, ['enroll', server.codes[1]]);
      // Receipt numbers for the lead's phone (before the manager's browser signs in: one
      // session per account).
      await api(server, 'manager', 'POST', `/v1/devices/${a.device_id}/serial-ranges`, { count: 20 });

      const context = await chrome.newContext({ locale: 'zh-CN', viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      const dialogs = [];
      page.on('dialog', async (d) => {
        dialogs.push(d.message());
        await d.dismiss();
      });
      // (Signing in by the keyboard alone is console.test.mjs's; here the fields are filled.)
      await page.goto(`${server.base}/`);
      await page.fill('#login', 'manager');
      await page.fill('#password', server.users.get('manager'));
      await Promise.all([page.waitForURL(/\/requests$/), page.locator('#password').press('Enter')]);

      // The bank's file through the upload form.
      await page.goto(`${server.base}/cases/import`);
      await page.setInputFiles('#file', {
        name: '委案-2026-12.csv',
        mimeType: 'text/csv',
        buffer: Buffer.from(caseFile(serverNow()), 'utf8'),
      });
      await Promise.all([page.waitForLoadState('load'), page.locator('form[action="/cases/import"] button').click()]);
      await page.locator('[role=status]').waitFor();
      assert.match(await page.locator('[role=status]').innerText(), /已导入 3 个委案/, what);
      await shoot(page, 'import-done-zh-CN', `${what} import`);

      await page.goto(`${server.base}/cases?q=BR-`);
      const list = await page.locator('tbody').innerText();
      for (const ref of ['BR-0001', 'BR-0002', 'BR-0003']) assert.ok(list.includes(ref), `${what}: ${ref}`);
      // Actor: a case file crafted to inject markup: the name shows as text, nothing runs.
      assert.ok(list.includes(XSS), what);
      assert.equal(await page.locator('tbody img').count(), 0, what);
      assert.ok(!list.includes('6222020200001234561'), `${what}: card numbers masked`);
      await shoot(page, 'cases-zh-CN', `${what} cases`);

      // A visit to the first case, wanted from now.
      await page.getByRole('link', { name: 'BR-0001' }).click();
      await page.waitForURL(/\/cases\/[0-9a-f-]+$/);
      const caseUrl = page.url();
      await shoot(page, 'case-zh-CN', `${what} case`);
      await page.fill('#wanted_from', shanghaiInput(serverNow() - 5 * 60_000));
      await page.fill('#wanted_until', shanghaiInput(serverNow() + DAY_MS));
      await page.fill('#purpose', '首次外访，核实居住地址并了解还款意愿');
      await Promise.all([page.waitForURL(/\/requests\/[0-9a-f-]+$/), page.locator('form[action$="/request"] button').click()]);
      const requestUrl = page.url();
      await shoot(page, 'approve-form-zh-CN', `${what} approval form`);

      // Actor: a malicious page a signed-in manager visits posts the approval form from its
      // own origin: no session cookie travels (SameSite=Strict), no token: nothing approved.
      // The page is served (by the browser's own interception) from another site.
      const evil = await context.newPage();
      await evil.route('http://evil.localhost/**', (route) =>
        route.fulfill({
          contentType: 'text/html',
          body:
            `<form method="post" action="${requestUrl}/approve">` +
            `<input name="agent" value="${a.agent_id}"><input name="agent" value="${p.agent_id}">` +
            '<input name="letter_number" value="X"><button>go</button></form>',
        }),
      );
      await evil.goto('http://evil.localhost/prize');
      await Promise.all([evil.waitForURL(/\/login/, { timeout: 15_000 }), evil.locator('button').click()]);
      await evil.close();
      await page.reload();
      assert.equal(await page.locator('form[action$="/approve"]').count(), 1, `${what}: still pending`);

      // The approval by the keyboard alone: two agents, the letter, cash.
      await tabTo(page, `input[name=agent][value="${a.agent_id}"]`);
      await page.keyboard.press('Space');
      await tabTo(page, `input[name=agent][value="${p.agent_id}"]`);
      await page.keyboard.press('Space');
      await tabTo(page, '#letter_number');
      await page.keyboard.type('WT-2026-1203');
      await tabTo(page, 'input[name=cash]');
      await page.keyboard.press('Space');
      await tabTo(page, '#cash_limit');
      await page.keyboard.type('2000');
      await tabTo(page, '#cash_account');
      await page.keyboard.type('浦江银行 6222 0000 1111');
      await tabTo(page, 'form[action$="/approve"] button[type=submit]');
      await Promise.all([page.waitForURL(/\/requests\?done=approved$/), page.keyboard.press('Enter')]);
      assert.match(await page.locator('[role=status]').innerText(), /外访已审批/, what);

      // The phones see it on their next sync, and visit.
      const synced = await lead.ok(server, ['sync']);
      assert.equal(synced.pulled.assignments.length, 1, `${what}: ${JSON.stringify(synced)}`);
      const visit = synced.pulled.assignments[0];
      assert.deepEqual((await partner.ok(server, ['sync'])).pulled.assignments, [visit], what);
      const checkedIn = await coSign(server, lead, partner, work, 'checkin', ['checkin', visit]);
      assert.equal(checkedIn.type, 'checked_in', what);
      await lead.ok(server, ['identity', visit, '--person', 'debtor']);
      await lead.ok(server, ['photo', visit, PHOTO, '--position', AT_THE_DOOR]);
      await lead.ok(server, ['note', visit, '债务人在家，当面还款。']);
      const pad = join(work, 'payer.png');
      writeFileSync(pad, signaturePng());
      for (const [name, fen] of [['receipt-1', '50000'], ['receipt-2', '30000']]) {
        const receipt = await coSign(server, lead, partner, work, name, [
          'receipt', visit, '--amount-fen', fen, '--payer-name', '林晓虹', '--payer-signature', pad,
        ]);
        assert.equal(receipt.type, 'receipt_issued', what);
      }
      await coSign(server, lead, partner, work, 'checkout', ['checkout', visit]);
      await coSign(server, lead, partner, work, 'seal', ['seal', visit]);
      const pushed = await lead.ok(server, ['push']);
      assert.equal(pushed.pushed.acknowledged, 1, `${what}: ${JSON.stringify(pushed)}`);

      await page.goto(`${server.base}/visits`);
      const visits = await page.locator('tbody').innerText();
      assert.ok(visits.includes('BR-0001') && visits.includes('已接收'), `${what}: ${visits}`);
      await shoot(page, 'visits-zh-CN', `${what} visits`);
      await page.getByRole('link', { name: 'BR-0001' }).click();
      await page.waitForURL(/\/visits\/[0-9a-f-]+$/);
      const visitUrl = page.url();
      assert.ok((await page.locator('main').innerText()).includes('WT-2026-1203'), what);
      await shoot(page, 'visit-zh-CN', `${what} visit`);
      assert.deepEqual(dialogs, [], `${what}: no script ran`);

      // P01: a complaint about the second case puts it on hold; a visit to it is refused,
      // naming the rule.
      await page.goto(`${server.base}/cases?q=BR-0002`);
      await page.getByRole('link', { name: 'BR-0002' }).click();
      await page.waitForURL(/\/cases\/[0-9a-f-]+$/);
      await page.fill('#complaint-note', '债务人来电投诉外访人员态度');
      await Promise.all([
        page.waitForURL(/done=complaint$/),
        page.locator('form[action$="/complaint"] button').click(),
      ]);
      await page.fill('#wanted_from', shanghaiInput(serverNow() + 3_600_000));
      await page.fill('#wanted_until', shanghaiInput(serverNow() + DAY_MS));
      await page.fill('#purpose', '回访');
      await Promise.all([page.waitForLoadState('load'), page.locator('form[action$="/request"] button').click()]);
      assert.match(await page.locator('[role=alert]').first().innerText(), /规则 V01/, what);
      await page.goto(`${server.base}/flags`);
      assert.ok((await page.locator('main').innerText()).includes('债务人来电投诉外访人员态度'), what);

      // Actor: a manager of another bank (a second bank and its manager put straight into
      // the database) opening this bank's request, visit and case by their addresses gets
      // the page a random id gets.
      const bankB = crypto.randomUUID();
      const userB = crypto.randomUUID();
      server.sql(`INSERT INTO banks (id, code, name, created_ms) VALUES ('${bankB}', 'xinhai', '信海银行', 0)`);
      server.sql(
        `INSERT INTO users (id, login, display_name, role, password_hash, created_ms, password_changed_ms) ` +
          `SELECT '${userB}', 'manager-b', '周海', role, password_hash, created_ms, password_changed_ms ` +
          `FROM users WHERE login = 'manager'`,
      );
      server.sql(`INSERT INTO user_banks (user_id, bank_id) VALUES ('${userB}', '${bankB}')`);
      const other = await chrome.newContext({ locale: 'zh-CN' });
      const stranger = await other.newPage();
      await stranger.goto(`${server.base}/login`);
      await stranger.fill('#login', 'manager-b');
      await stranger.fill('#password', server.users.get('manager'));
      await Promise.all([stranger.waitForURL(/\/requests$/), stranger.keyboard.press('Enter')]);
      const notFound = async (url) => {
        const answer = await stranger.goto(url);
        assert.equal(answer.status(), 404, `${what}: ${url}`);
        return stranger.locator('main').innerText();
      };
      const random = await notFound(`${server.base}/visits/${crypto.randomUUID()}`);
      for (const url of [requestUrl, visitUrl, caseUrl]) {
        assert.equal(await notFound(url), random, `${what}: ${url}`);
      }
      await other.close();

      // Every page in both languages: one language each, screenshots, axe-core.
      const pages = [
        ['requests', `${server.base}/requests`],
        ['cases', `${server.base}/cases?q=BR-`],
        ['case', caseUrl],
        ['request', requestUrl],
        ['import', `${server.base}/cases/import`],
        ['visits', `${server.base}/visits`],
        ['visit', visitUrl],
        ['flags', `${server.base}/flags`],
      ];
      const state = await context.storageState();
      for (const [lang, locale, other] of [['zh-CN', 'zh-CN', 'en'], ['en', 'en-US', 'zh-CN']]) {
        const look = await chrome.newContext({ locale, storageState: state, viewport: { width: 1280, height: 800 } });
        const axe = await chrome.newContext({ locale, bypassCSP: true, storageState: state });
        const view = await look.newPage();
        for (const [name, url] of pages) {
          await view.goto(url);
          assert.equal(await view.getAttribute('html', 'lang'), lang, `${what} ${name}`);
          await assertOneLanguage(view, lang, other, `${what} ${lang} ${name}`);
          await shoot(view, `${name}-${lang}`, `${what} ${lang} ${name}`);
          await assertAccessible(axe, url, `${what} ${lang} ${name}`);
        }
        await axe.close();
        await look.close();
      }
      await context.close();
      assert.ok(messages('en').get('nav-cases'), 'the English message files are read');
    } finally {
      await server.stop();
    }
  });
}
