// The legal staff's evidence pages in a real browser, on every backend and in both
// languages, with evidence real phones made: two `tandem field` phones make a visit with
// two photos, three seconds of audio and a cash receipt. Legal staff sign in, search the
// case reference, state a purpose (kind and text), and read the visit: every image loaded,
// the plot titled, an audio segment plays and seeks (HTTP Range), "verify again" passes
// every check; they export it with a purpose, the ZIP passes `tandem verify --trust`, and
// its report.html, opened with the network off, shows every image and the verification
// table, and prints. A manager asking for the same original or the export gets the very
// "not found" a random id gets. An admin reads the reads in the audit log with the purpose stated, verifies the log
// from the page, and `tandem audit verify` holds on the server's database. No raw message
// id nor string of the other language, no serious accessibility violation; every page
// screenshotted in both languages, at a laptop's width and a tablet's.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import {
  assertAccessibleHere, assertOneLanguage, backends, messages, root, shoot, shots, startServer, tandem,
} from './support.mjs';
import { PHOTO, PORTRAIT, fieldTeam, fieldVisit, toneWav } from './field.mjs';

const run = promisify(execFile);
const CASE = 'PJ-2026-0001';
const FILES = ['console.ftl', 'manage.ftl', 'money.ftl', 'dossier.ftl', 'admin.ftl'];
const LOCALES = [
  { lang: 'zh-CN', locale: 'zh-CN', other: 'en', purpose: '（2026）沪0101民初1234号诉讼，调取外访录音及收条' },
  { lang: 'en', locale: 'en-US', other: 'zh-CN', purpose: 'Suit (2026) Hu 0101 Min Chu 1234: visit audio and receipt' },
];
const WAIT = { timeout: 15_000 };
const DAY_MS = 86_400_000;

/** The clock shift that puts a server at 10:00 in Shanghai (02:00 UTC) today, within the
 *  visiting hours whenever the test runs. */
function tenTodayOffsetMs() {
  const now = Date.now();
  return now - (now % DAY_MS) + 2 * 3_600_000 - now;
}

let chrome;
before(async () => {
  // Debian's Chromium, headless, allowed to play a recording without a click.
  chrome = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--autoplay-policy=no-user-gesture-required'],
  });
});
after(async () => {
  await chrome?.close();
});

/** A fresh browser context signed in as `login` through the form. */
async function signedIn(server, login, locale) {
  const context = await chrome.newContext({ locale, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${server.base}/login`);
  await page.fill('#login', login);
  await page.fill('#password', server.users.get(login));
  await page.click('button.primary');
  await page.waitForURL((url) => !url.pathname.startsWith('/login'), WAIT);
  return { context, page };
}

/** A message of `lang`'s dossier.ftl whose id `messages` skips (an underscore in it). */
function ftl(lang, id) {
  const line = readFileSync(join(root, 'server', 'locales', lang, 'dossier.ftl'), 'utf8')
    .split('\n').find((l) => l.startsWith(`${id} = `));
  assert.ok(line, `${id} in ${lang}`);
  return line.slice(id.length + 3);
}

/** Polls `check` (evaluated in the page with `arg`) until it is true, for at most `ms`;
 *  resolves with its last value. (The page's CSP forbids waitForFunction's eval.) */
async function until(target, check, arg, ms = WAIT.timeout) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await target.evaluate(check, arg);
    if (value || Date.now() > deadline) return value;
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

/** Checks the page in its language and for accessibility, and screenshots it. */
async function record(page, { lang, other }, name, what) {
  await shoot(page, `legal-${name}-${lang}`, `${what} ${name}`);
  await assertOneLanguage(page, lang, other, `${what} ${name}`, FILES);
  await assertAccessibleHere(page, `${what} ${name}`);
}

/** The status and the main text of `url` opened in `page`. */
async function mainOf(page, url) {
  const answer = await page.goto(url);
  return { status: answer.status(), text: (await page.locator('main').innerText()).trim() };
}

for (const backend of backends()) {
  test(`legal staff read a visit's evidence, audited (${backend.label})`, async () => {
    const phones = mkdtempSync(join(tmpdir(), 'tandem-phones-'));
    const server = await startServer(backend, { offsetMs: tenTodayOffsetMs() });
    try {
      const team = await fieldTeam(server, phones);
      const wav = join(phones, 'tone.wav');
      writeFileSync(wav, toneWav(3));
      const visitId = await fieldVisit(server, team, CASE, [['林晓虹', 50_000]], { photos: [PHOTO, PORTRAIT], audio: wav });

      for (const loc of LOCALES) {
        const { lang, locale, purpose } = loc;
        const what = `${backend.label} ${lang}`;
        const text = messages(lang, FILES);
        const dialogs = [];

        // Legal staff: the search, by the case reference.
        const { context, page } = await signedIn(server, 'legal', locale);
        page.on('dialog', async (d) => {
          dialogs.push(d.message());
          await d.dismiss();
        });
        // The blobs the browser fetched in part: `Content-Range` of every 206.
        const ranges = [];
        page.on('response', (r) => {
          if (r.url().includes('/blobs/') && r.status() === 206) ranges.push(r.headers()['content-range']);
        });
        await page.goto(`${server.base}/evidence`);
        await page.getByLabel(text.get('dossier-f-case')).fill(CASE);
        await page.getByRole('button', { name: text.get('dossier-f-apply') }).click();
        await page.waitForURL(/case_ref=/, WAIT);
        const hits = page.locator('table.evidence-hits tbody tr');
        assert.equal(await hits.count(), 1, `${what}: one visit found`);
        assert.ok((await hits.first().innerText()).includes(CASE), what);
        await record(page, loc, 'search', what);

        // The purpose first: a kind from the list and a text.
        await hits.first().getByRole('link', { name: CASE }).click();
        await page.waitForURL(new RegExp(`/evidence/visits/${visitId}$`), WAIT);
        assert.equal(await page.locator('audio, ul.thumbs img').count(), 0, `${what}: no evidence before a purpose`);
        await record(page, loc, 'purpose', what);
        await page.getByLabel(text.get('dossier-purpose-kind')).selectOption('litigation');
        await page.getByLabel(text.get('dossier-purpose-text')).fill(purpose);
        await page.getByRole('button', { name: text.get('dossier-purpose-open') }).click();
        await page.waitForSelector('#photos-h', WAIT);
        const stated = await page.locator('p.sub').first().innerText();
        assert.ok(stated.includes(purpose), `${what}: the purpose shown`);
        assert.ok(stated.includes(text.get('dossier-purpose-litigation')), `${what}: its kind in the language: ${stated}`);
        assert.ok(!stated.includes('litigation:'), `${what}: no stored key shown: ${stated}`);

        // Every image loaded (thumbnails lazily: each scrolled to), the plot titled.
        const thumbs = page.locator('ul.thumbs img');
        assert.equal(await thumbs.count(), 2, `${what}: two photos`);
        assert.equal(await page.locator('img.signature').count(), 1, `${what}: the payer's signature`);
        for (const img of await page.locator('main img').all()) await img.scrollIntoViewIfNeeded();
        await until(page, () => [...document.images].every((i) => i.complete && i.naturalWidth > 0));
        const broken = await page.evaluate(() =>
          [...document.images].filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.src));
        assert.deepEqual(broken, [], `${what}: images not loaded`);
        const plot = page.locator('figure.plot svg');
        assert.equal(await plot.count(), 1, `${what}: the plot`);
        assert.equal(await plot.locator('title').textContent(), text.get('dossier-plot-title'), what);
        const box = await plot.boundingBox();
        assert.ok(box.width > 200 && box.height > 150, `${what}: plot size ${JSON.stringify(box)}`);

        // The audio plays and seeks; the browser fetches it by ranges.
        const audio = page.locator('ol.audio audio').first();
        await audio.scrollIntoViewIfNeeded();
        const duration = await audio.evaluate(async (a) => {
          if (!(a.duration > 0)) {
            a.load();
            await new Promise((ok, fail) => {
              a.addEventListener('loadedmetadata', ok, { once: true });
              a.addEventListener('error', () => fail(new Error(`audio error ${a.error?.code}`)), { once: true });
            });
          }
          return a.duration;
        });
        assert.ok(duration > 2.5 && duration < 3.5, `${what}: audio of ${duration} s`);
        await audio.evaluate((a) => a.play());
        const played = await until(audio, (a) => a.currentTime > 0.3);
        assert.ok(played, `${what}: the audio did not play (at ${await audio.evaluate((a) => a.currentTime)} s)`);
        const at = await audio.evaluate(async (a) => {
          a.pause();
          const seeked = new Promise((ok) => a.addEventListener('seeked', ok, { once: true }));
          a.currentTime = 2.5;
          await seeked;
          return a.currentTime;
        });
        assert.ok(Math.abs(at - 2.5) < 0.2, `${what}: sought to ${at}`);
        assert.ok(ranges.length > 0, `${what}: the audio fetched by ranges`);
        assert.ok(ranges.every((r) => /^bytes \d+-\d+\/\d+$/.test(r)), `${what}: ${ranges}`);
        await record(page, loc, 'visit', what);

        // The original, for legal staff: the photo's bytes.
        const original = new URL(await page.locator('ul.thumbs a').first().getAttribute('href'), server.base).toString();
        const answer = await page.request.get(original);
        assert.equal(answer.status(), 200, what);
        assert.equal(answer.headers()['content-type'], 'image/jpeg', what);
        assert.equal(answer.headers()['x-content-type-options'], 'nosniff', what);

        // Verify again: every check run again on the stored files passes.
        await page.getByRole('button', { name: text.get('dossier-reverify') }).click();
        await page.waitForSelector('#reverify', WAIT);
        assert.equal((await page.locator('#reverify [role=status]').innerText()).trim(), text.get('dossier-reverify-ok'), what);
        // Every check run again passes, but those of a bundle exported with the server's
        // receipt (its receipt, inclusion proof and checkpoint: here the log's own checks,
        // shown below, which all pass).
        const rowsOf = (table) => page.locator(`${table} tbody tr`).evaluateAll((rows) =>
          rows.map((r) => [r.querySelector('th small')?.innerText.trim() ?? r.querySelector('th').innerText.trim(),
            r.querySelector('td .badge').innerText.trim()]));
        const results = await rowsOf('#reverify table.checks');
        const passed = ftl(lang, 'check-result-pass');
        const absent = ftl(lang, 'check-result-not_present');
        assert.ok(results.filter(([, r]) => r === passed).length >= 10, `${what}: ${JSON.stringify(results)}`);
        assert.deepEqual(results.filter(([, r]) => r !== passed && r !== absent), [], `${what}: checks not passed`);
        assert.deepEqual(results.filter(([, r]) => r === absent).map(([id]) => id).sort(),
          ['checkpoint', 'export_note', 'inclusion_proof', 'server_receipt'], `${what}: checks not applicable`);
        const log = await rowsOf('#reverify ~ table.checks:last-of-type');
        assert.equal(log.length, 3, `${what}: the log's checks`);
        assert.deepEqual(log.filter(([, r]) => r !== passed), [], `${what}: the log's checks pass`);
        await record(page, loc, 'verified', what);

        // The export, with its purpose: the ZIP verifies with the server's key alone.
        const exportPurpose = `${purpose} (export)`;
        await page.locator('#export textarea[name=text]').fill(exportPurpose);
        const [download] = await Promise.all([
          page.waitForEvent('download', WAIT),
          page.getByRole('button', { name: text.get('dossier-export-button') }).click(),
        ]);
        const unpacked = mkdtempSync(join(tmpdir(), 'tandem-export-'));
        try {
          const zip = join(unpacked, download.suggestedFilename());
          assert.match(download.suggestedFilename(), /^tandem-bundle-[0-9a-f-]+\.zip$/, what);
          await download.saveAs(zip);
          const key = await (await page.request.get(`${server.base}/v1/server-key`)).json();
          const keys = join(unpacked, 'keys.json');
          writeFileSync(keys, JSON.stringify({ server_keys: [{ alg: key.alg, key: key.key }] }));
          const verified = await run(tandem, ['verify', '--json', '--trust', keys, '--server-key', key.kid, zip])
            .catch((e) => { throw new Error(`${what}: tandem verify: exit ${e.code}: ${e.stdout}${e.stderr}`); });
          const report = JSON.parse(verified.stdout);
          assert.equal(report.checks.find((c) => c.name === 'export_note').result, 'pass', what);
          assert.deepEqual(report.checks.filter((c) => c.result === 'fail'), [], what);

          // report.html, opened from the unpacked ZIP with the network off: every image
          // shows, the verification table is there, in the requester's language.
          const folder = join(unpacked, 'export');
          await run('python3', ['-m', 'zipfile', '-e', zip, folder]);
          const offline = await chrome.newContext({ locale, offline: true, viewport: { width: 1280, height: 800 } });
          const reader = await offline.newPage();
          const requests = [];
          reader.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url()); });
          await reader.goto(`file://${join(folder, 'export', 'report.html')}`);
          assert.equal(await reader.getAttribute('html', 'lang'), lang, what);
          const images = await reader.evaluate(() =>
            [...document.images].map((i) => i.complete && i.naturalWidth > 0));
          assert.equal(images.length, 3, `${what}: two photos and the payer's signature`);
          assert.ok(images.every(Boolean), `${what}: report images ${images}`);
          const checks = await reader.locator('#verification tbody tr').count();
          assert.ok(checks >= 10, `${what}: ${checks} checks in the report`);
          assert.ok((await reader.locator('body').innerText()).includes(exportPurpose), `${what}: the purpose in the report`);
          assert.equal(await reader.locator('svg.plot').count(), 1, `${what}: the plot`);
          assert.deepEqual(requests, [], `${what}: the report fetched nothing`);
          // An original opens from the report, from the unpacked files.
          const original = await reader.locator('ul.thumbs a').first().getAttribute('href');
          assert.ok(readFileSync(join(folder, 'export', original)).length > 0, `${what}: ${original}`);
          await record(reader, loc, 'report', what);
          await reader.emulateMedia({ media: 'print' });
          await reader.screenshot({ path: join(shots, `legal-report-print-${lang}.png`), fullPage: true });
          const pdf = await reader.pdf({ format: 'A4' });
          assert.ok(pdf.length > 10_000, `${what}: the report prints (${pdf.length} bytes of PDF)`);
          writeFileSync(join(shots, `legal-report-${lang}.pdf`), pdf);
          await offline.close();
        } finally {
          rmSync(unpacked, { recursive: true, force: true });
        }
        assert.deepEqual(dialogs, [], `${what}: no script ran`);
        await context.close();

        // A manager asking for the same original gets the page a random id gets.
        const manager = await signedIn(server, 'manager', locale);
        const refused = await mainOf(manager.page, original);
        const random = await mainOf(
          manager.page, `${server.base}/evidence/visits/${randomUUID()}/blobs/${randomBytes(32).toString('hex')}`);
        assert.equal(refused.status, 404, what);
        assert.deepEqual(refused, random, `${what}: the same "not found"`);
        assert.ok(refused.text.includes(text.get('error-not-found')), `${what}: ${refused.text}`);
        await record(manager.page, loc, 'manager-not-found', what);
        // Nor the export: asked with the manager's own session token, the same "not found".
        await manager.page.goto(`${server.base}/flags`);
        const csrf = await manager.page.locator('input[name=csrf]').first().getAttribute('value');
        const asked = async (id) => {
          const answer = await manager.page.request.post(`${server.base}/evidence/visits/${id}/export`,
            { form: { csrf, kind: 'audit', text: '看看证据的全部内容' } });
          return { status: answer.status(), type: answer.headers()['content-type'] };
        };
        const exported = await asked(visitId);
        assert.equal(exported.status, 404, `${what}: a manager's export`);
        assert.deepEqual(exported, await asked(randomUUID()), `${what}: the same "not found"`);
        await manager.context.close();

        // The admin reads the reads, with the purpose, and verifies the log.
        const admin = await signedIn(server, 'admin', locale);
        await admin.page.goto(`${server.base}/admin/audit`);
        const rows = await admin.page.locator('main table tbody tr').evaluateAll((trs) =>
          trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.innerText.trim())));
        for (const action of ['evidence-access-opened', 'evidence-viewed', 'thumbnail-viewed', 'original-viewed',
          'audio-played', 'evidence-verified', 'evidence-exported']) {
          const label = text.get(`admin-action-${action}`);
          assert.ok(rows.some((r) => r[2] === label && r[6].includes(purpose)), `${what}: "${label}" with the purpose`);
        }
        await record(admin.page, loc, 'audit', what);
        await admin.page.getByRole('button', { name: text.get('admin-audit-verify') }).click();
        await admin.page.waitForSelector('.audit-verify .notice', WAIT);
        const verdict = admin.page.locator('.audit-verify .notice');
        assert.match(await verdict.getAttribute('class'), /\bok\b/, what);
        assert.ok((await verdict.innerText()).includes(text.get('admin-audit-verified-ok')), what);
        await record(admin.page, loc, 'audit-verified', what);
        await admin.context.close();
      }

      // The log holds when checked beside the server, from its database and key.
      const data = join(server.dir, 'data');
      const args = ['audit', 'verify', '--data-dir', data];
      if (server.databaseUrl) args.push('--database-url', server.databaseUrl, '--key-file', join(data, 'server-key.p8'));
      const env = { ...process.env };
      delete env.DATABASE_URL;
      const { stdout } = await run(tandem, args, { env }).catch((e) => {
        throw new Error(`tandem audit verify: exit ${e.code}: ${e.stdout}${e.stderr}`);
      });
      assert.ok(stdout.length > 0, 'tandem audit verify says what it checked');
    } finally {
      await server.stop();
      rmSync(phones, { recursive: true, force: true });
    }
  });
}
