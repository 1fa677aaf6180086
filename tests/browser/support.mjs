// What the browser tests stand on: real `tandem serve --demo` processes (SQLite always,
// PostgreSQL too when TANDEM_TEST_DATABASE_URL names a cluster the tests may create
// databases on), Debian's Chromium driven by playwright-core, the console's message files,
// and a folder for the screenshots.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '../..');
const target = process.env.CARGO_TARGET_DIR ?? join(root, 'target');
export const tandem = process.env.TANDEM_BIN ?? join(target, 'debug', 'tandem');
export const shots = join(target, 'browser-screenshots');
mkdirSync(shots, { recursive: true });

/** The console's messages per language: id → text (placeables left as `{ $x }`). */
export function messages(lang) {
  const text = readFileSync(join(root, 'server', 'locales', lang, 'console.ftl'), 'utf8');
  const out = new Map();
  for (const line of text.split('\n')) {
    const m = /^([a-z][a-z0-9-]*) = (.*)$/.exec(line);
    if (m) out.set(m[1], m[2]);
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

/** Starts `tandem serve --demo` on `backend`; resolves with its URL and demo logins. */
export async function startServer(backend) {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-browser-'));
  const args = ['serve', '--demo', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')];
  let dropDb = null;
  if (backend.admin) {
    const name = `tandem_browser_${process.pid}_${Date.now()}`;
    execFileSync('psql', [backend.admin, '-qc', `CREATE DATABASE ${name}`]);
    const url = new URL(backend.admin);
    url.pathname = `/${name}`;
    args.push('--database-url', url.toString());
    dropDb = () => execFileSync('psql', [backend.admin, '-qc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
  }
  const env = { ...process.env, RUST_LOG: 'warn' };
  delete env.DATABASE_URL;
  const child = spawn(tandem, args, {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const users = new Map();
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
    });
  });
  return {
    base,
    users,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((ok) => (child.exitCode !== null ? ok() : child.on('exit', ok)));
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
