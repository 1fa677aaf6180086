// Two `tandem field` phones (real core phones in their own folders, driven through the
// `tandem` command as server/tests/field_cli.rs drives them) making real visits with
// receipts against a `tandem serve --demo` started by support.mjs: enrolment, the
// manager's approval over the JSON API, sync, co-signed check-in, receipts, check-out,
// seal and push. Used by the browser tests to put real receipts in a server.

import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { deflateSync } from 'node:zlib';
import { api, root, tandem } from './support.mjs';

const run = promisify(execFile);
/** The demo's first case, 上海市黄浦区南京东路300号, as AMap shows it (GCJ-02). */
export const AT_THE_DOOR = '31.2380500,121.4817400,8';
/** The same door in 1e-7 degrees, as a case file's columns give it. */
export const DOOR_E7 = { lat: 312_380_500, lon: 1_214_817_400 };
/** Six metres north of the lead. */
const BESIDE_THE_LEAD = '31.2381000,121.4817400,8';
/** A camera's photo with its EXIF GPS. */
export const PHOTO = join(root, 'core', 'tests', 'fixtures', 'photos', 'gps-DSCN0010.jpg');
/** A phone camera's portrait photo (EXIF orientation 6). */
export const PORTRAIT = join(root, 'core', 'tests', 'fixtures', 'photos', 'orientation-portrait_6.jpg');
const DAY_MS = 86_400_000;

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A payer's signature drawn on screen: a small grey-scale PNG with a diagonal stroke. */
export function signaturePng() {
  const [w, h] = [120, 40];
  const raw = Buffer.alloc((w + 1) * h, 255);
  for (let y = 0; y < h; y++) {
    raw[y * (w + 1)] = 0;
    for (let x = 0; x < w; x++) if (Math.abs(x / 3 - y) < 1.5) raw[y * (w + 1) + 1 + x] = 0;
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grey
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** `seconds` of a 440 Hz tone as a mono 16-bit WAV at 16 kHz, as a phone's microphone
 *  would give it. */
export function toneWav(seconds) {
  const rate = 16_000;
  const samples = Math.round(seconds * rate);
  const wav = Buffer.alloc(44 + samples * 2);
  wav.write('RIFF', 0, 'ascii');
  wav.writeUInt32LE(36 + samples * 2, 4);
  wav.write('WAVEfmt ', 8, 'ascii');
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // mono
  wav.writeUInt32LE(rate, 24);
  wav.writeUInt32LE(rate * 2, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36, 'ascii');
  wav.writeUInt32LE(samples * 2, 40);
  for (let i = 0; i < samples; i++) {
    wav.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 440 * i) / rate) * 8_000), 44 + i * 2);
  }
  return wav;
}

/** The server's time now: the machine's, shifted as the server's clock is. */
function serverNow(server) {
  return Date.now() + server.offsetMs;
}

/** One phone folder. Every command names the server (its port changes on a restart) and
 *  sets the phone's wall clock to the server's time, as a phone's clock would show. */
export class FieldPhone {
  constructor(dir) {
    this.dir = dir;
  }

  args(server, args) {
    const wall = new Date(serverNow(server)).toISOString();
    return ['field', '--dir', this.dir, '--server', server.base, '--wall-clock', wall, ...args, '--json'];
  }

  async ok(server, args) {
    try {
      const { stdout } = await run(tandem, this.args(server, args));
      return JSON.parse(stdout);
    } catch (e) {
      throw new Error(`tandem field ${args.join(' ')}: ${e.stderr ?? e.message}`);
    }
  }
}

/** The lead shows a challenge for `args`, the partner answers it from the file, the lead
 *  completes; resolves with the lead's JSON result. */
export async function coSign(server, lead, partner, work, name, args) {
  const challenge = join(work, `${name}-challenge.txt`);
  const reply = join(work, `${name}-reply.txt`);
  const child = spawn(tandem, lead.args(server, [
    ...args, '--position', AT_THE_DOOR, '--challenge-out', challenge, '--reply-in', reply, '--timeout', '60',
  ]), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const done = new Promise((ok) => child.on('exit', ok));
  const deadline = Date.now() + 30_000;
  while (!existsSync(challenge)) {
    if (child.exitCode !== null) throw new Error(`${name}: the lead exited: ${err}`);
    if (Date.now() > deadline) throw new Error(`${name}: no challenge in 30 s`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
  await partner.ok(server, ['answer', '--in', challenge, '--out', reply, '--position', BESIDE_THE_LEAD]);
  const code = await done;
  if (code !== 0) throw new Error(`${name}: the lead failed (${code}): ${err}`);
  return JSON.parse(out);
}

/** Two phones in `root`, enrolled with the demo's first two agents' codes. */
export async function fieldTeam(server, root) {
  mkdirSync(root, { recursive: true });
  const lead = new FieldPhone(join(root, 'lead'));
  const partner = new FieldPhone(join(root, 'partner'));
  const a = await lead.ok(server, ['enroll', server.codes[0]]);
  const p = await partner.ok(server, ['enroll', server.codes[1]]);
  const png = join(root, 'payer.png');
  writeFileSync(png, signaturePng());
  return { lead, partner, agents: [a.agent_id, p.agent_id], device: a.device_id, root, png, visits: 0 };
}

/** A whole visit to case `caseRef` by `team`: the manager approves it (cash up to
 *  ¥10,000) and gives the lead ten receipt numbers, both phones sync, check in, the lead
 *  takes `media.photos` (files) and records `media.audio` (a WAV file, at the pace of a
 *  microphone), co-signs a receipt per payment `[payer, fen]`, checks out, seals and
 *  pushes. Resolves with the visit id. */
export async function fieldVisit(server, team, caseRef, payments, media = {}) {
  const me = await api(server, 'manager', 'GET', '/v1/me');
  const cases = await api(server, 'manager', 'GET', `/v1/banks/${me.bank_ids[0]}/cases`);
  const target = cases.find((c) => c.case_ref === caseRef);
  const now = serverNow(server);
  const request = await api(server, 'manager', 'POST', '/v1/visit-requests', {
    case_id: target.id, wanted_from_ms: now, wanted_until_ms: now + DAY_MS, purpose: '上门收款',
  });
  const approved = await api(server, 'manager', 'POST', `/v1/visit-requests/${request.id}/approve`, {
    team: team.agents.map((agent_id) => ({ agent_id })),
    valid_from_ms: now - 60_000,
    valid_until_ms: now + 2 * DAY_MS,
    letter_number: 'WT-2026-118',
    letter_valid_until_ms: now + 30 * DAY_MS,
    cash: { limit_fen: 1_000_000, currency: 'CNY', designated_account: '6222 0210 0012 3456 789', methods: ['cash'] },
  });
  const visit = approved.visit_id;
  await api(server, 'manager', 'POST', `/v1/devices/${team.device}/serial-ranges`, { count: 10 });
  await team.lead.ok(server, ['sync']);
  await team.partner.ok(server, ['sync']);
  team.visits += 1;
  const work = join(team.root, `visit-${team.visits}`);
  mkdirSync(work, { recursive: true });
  const { lead, partner } = team;
  await coSign(server, lead, partner, work, 'checkin', ['checkin', visit]);
  await lead.ok(server, ['identity', visit, '--person', 'debtor']);
  for (const photo of media.photos ?? []) {
    await lead.ok(server, ['photo', visit, photo, '--position', AT_THE_DOOR]);
  }
  if (media.audio) await lead.ok(server, ['audio', visit, media.audio, '--position', AT_THE_DOOR]);
  for (const [i, [payer, fen]] of payments.entries()) {
    await coSign(server, lead, partner, work, `receipt-${i}`, [
      'receipt', visit, '--amount-fen', String(fen), '--payer-name', payer, '--payer-signature', team.png,
    ]);
  }
  await coSign(server, lead, partner, work, 'checkout', ['checkout', visit]);
  await coSign(server, lead, partner, work, 'seal', ['seal', visit]);
  const pushed = await lead.ok(server, ['push']);
  if (pushed.pushed.acknowledged !== 1) throw new Error(`push: ${JSON.stringify(pushed)}`);
  return visit;
}
