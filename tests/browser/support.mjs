// What the browser tests stand on: real `tandem serve --demo` processes (SQLite always,
// PostgreSQL too when TANDEM_TEST_DATABASE_URL names a cluster the tests may create
// databases on), Debian's Chromium driven by playwright-core, the console's message files,
// and a folder for the screenshots.

import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '../..');
const target = process.env.CARGO_TARGET_DIR ?? join(root, 'target');
export const tandem = process.env.TANDEM_BIN ?? join(target, 'debug', 'tandem');
export const shots = join(target, 'browser-screenshots');
mkdirSync(shots, { recursive: true });

/** The console's messages per language: id → text (placeables left as `{ $x }`), from
 *  `files` of the language's folder (by default every message file of the console). */
export function messages(lang, files = null) {
  const folder = join(root, 'server', 'locales', lang);
  const out = new Map();
  for (const file of files ?? readdirSync(folder).filter((f) => f.endsWith('.ftl')).sort()) {
    for (const line of readFileSync(join(folder, file), 'utf8').split('\n')) {
      const m = /^([a-z][a-z0-9-]*) = (.*)$/.exec(line);
      if (m) out.set(m[1], m[2]);
    }
  }
  return out;
}

/** Debian's Chromium, headless. */
export async function browser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
}

/** The databases a run covers: SQLite, and PostgreSQL when a cluster is given. */
export function backends() {
  const list = [{ label: 'sqlite', url: null }];
  const admin = process.env.TANDEM_TEST_DATABASE_URL;
  if (admin) {
    list.push({ label: 'postgres', admin });
  } else if (process.env.CI === 'true') {
    throw new Error('CI=true but TANDEM_TEST_DATABASE_URL is not set: PostgreSQL would be skipped');
  }
  return list;
}

/** Starts `tandem serve --demo` on `backend`; resolves with its URL, demo logins and the
 *  agents' enrolment codes. `options.offsetMs` shifts the server's clock; `options.reuse`
 *  starts it again on the data (folder, database, logins) of a server stopped with
 *  `stop({ keep: true })`. */
export async function startServer(backend, options = {}) {
  const reuse = options.reuse;
  const dir = reuse?.dir ?? mkdtempSync(join(tmpdir(), 'tandem-browser-'));
  const args = ['serve', '--demo', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')];
  if (options.offsetMs) args.push(`--clock-offset-ms=${options.offsetMs}`);
  let dropDb = reuse?.dropDb ?? null;
  let databaseUrl = reuse?.databaseUrl ?? null;
  // Runs one SQL statement on the server's database, beside the server (tests use it to
  // put the world in a state the API cannot, such as a month-old password).
  let sql = (statement) =>
    execFileSync('python3', [
      '-c',
      'import sqlite3, sys\nc = sqlite3.connect(sys.argv[1], timeout=10)\nc.execute(sys.argv[2])\nc.commit()',
      join(dir, 'data', 'tandem.db'),
      statement,
    ]);
  if (databaseUrl) {
    args.push('--database-url', databaseUrl);
  } else if (backend.admin) {
    const name = `tandem_browser_${process.pid}_${Date.now()}`;
    execFileSync('psql', [backend.admin, '-qc', `CREATE DATABASE ${name}`]);
    const url = new URL(backend.admin);
    url.pathname = `/${name}`;
    databaseUrl = url.toString();
    args.push('--database-url', databaseUrl);
    dropDb = () => execFileSync('psql', [backend.admin, '-qc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
  }
  if (databaseUrl) sql = (statement) => execFileSync('psql', [databaseUrl, '-qc', statement]);
  const env = { ...process.env, RUST_LOG: 'warn' };
  delete env.DATABASE_URL;
  const child = spawn(tandem, args, {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const users = reuse?.users ?? new Map();
  const codes = reuse?.codes ?? [];
  const base = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('tandem serve did not start in 60 s')), 60_000);
    child.on('exit', (code) => fail(new Error(`tandem serve exited (${code}) before listening`)));
    let section = '';
    createInterface({ input: child.stdout }).on('line', (line) => {
      const listening = /^tandem: listening on (.*)$/.exec(line.trim());
      if (listening) {
        clearTimeout(timer);
        ok(listening[1]);
      }
      if (line.startsWith('Console users')) section = 'users';
      if (line.startsWith('Agent enrollment codes')) section = 'agents';
      const words = line.trim().split(/\s+/);
      if (section === 'users' && words.length === 3) users.set(words[0], words[2]);
      if (section === 'agents' && words.length === 3) codes.push(words[2]);
    });
  });
  return {
    base,
    users,
    codes,
    dir,
    sql,
    databaseUrl,
    dropDb,
    offsetMs: options.offsetMs ?? 0,
    async stop({ keep = false } = {}) {
      child.kill('SIGTERM');
      await new Promise((ok) => (child.exitCode !== null ? ok() : child.on('exit', ok)));
      if (keep) return;
      if (dropDb) dropDb();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Calls the JSON API as `login`; returns the parsed answer. */
export async function api(server, login, method, path, body) {
  const signIn = await fetch(`${server.base}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login, password: server.users.get(login) }),
  });
  const { token } = await signIn.json();
  const answer = await fetch(`${server.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await answer.text();
  if (!answer.ok) throw new Error(`${method} ${path}: ${answer.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Fails when the page shows a raw message id, or a message of the other language (from
 *  the message `files` of both languages, by default all of them). */
export async function assertOneLanguage(page, lang, other, what, files = null) {
  // A missing message shows its id, lower-case words joined by hyphens, as the whole text
  // of its element (or of an attribute a screen reader reads).
  const raw = await page.evaluate(() => {
    const id = /^[a-z]+(-[a-z0-9]+)+$/;
    const found = [];
    const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      if (id.test(n.textContent.trim())) found.push(n.textContent.trim());
    }
    for (const el of document.querySelectorAll('[aria-label],[title],[placeholder],[alt]')) {
      for (const a of ['aria-label', 'title', 'placeholder', 'alt']) {
        const v = el.getAttribute(a);
        if (v && id.test(v.trim())) found.push(v.trim());
      }
    }
    if (id.test(document.title.split(' · ')[0])) found.push(document.title);
    return found;
  });
  assert.deepEqual(raw, [], `${what}: raw message ids`);
  const text = await page.locator('body').innerText();
  const own = new Set(messages(lang, files).values());
  for (const [id, value] of messages(other, files)) {
    // Only whole messages without placeables, long enough to be unambiguous, and not
    // the same in both files (the language switch names the other language on purpose).
    if (value.includes('{') || value.length < 6 || own.has(value) || id === 'lang-other' || id === 'lang-name') continue;
    assert.ok(!text.includes(value), `${what}: "${value}" (${other}) on a ${lang} page`);
  }
}

/** Screenshots the page at a laptop's width and at a tablet's (768 px), where nothing may
 *  push the page wider than the screen (a wide table scrolls inside its panel). */
export async function shoot(page, name, what) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  await page.setViewportSize({ width: 768, height: 1024 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${what}: the page is ${overflow} px wider than a tablet`);
  await page.screenshot({ path: join(shots, `${name}-tablet.png`), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
}

/** axe-core's serious and critical violations on `url`, in a CSP-bypassing `context`. */
export async function assertAccessible(context, url, what) {
  const page = await context.newPage();
  await page.goto(url);
  await page.addScriptTag({ path: createRequire(import.meta.url).resolve('axe-core/axe.min.js') });
  const result = await page.evaluate(async () => await window.axe.run(document));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`),
    [],
    `${what}: accessibility`,
  );
  await page.close();
}

/** axe-core's serious and critical violations on the page as it is now (a page reached by
 *  a form post, which a fresh page cannot load again). The script is evaluated through the
 *  browser's debugging protocol, which the page's CSP does not govern. */
export async function assertAccessibleHere(page, what) {
  await page.evaluate(readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8'));
  const result = await page.evaluate(async () => await window.axe.run(document));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`),
    [],
    `${what}: accessibility`,
  );
}

/** A keyboard's Tab presses until `selector` has the focus (at most `max`). */
export async function tabTo(page, selector, max = 150) {
  for (let i = 0; i < max; i += 1) {
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
    await page.keyboard.press('Tab');
  }
  throw new Error(`${selector}: not reached by Tab`);
}
