import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

/**
 * A realistic legacy Trello import file (docs/trello-import-format.md), as large as asked, the
 * same every time for the same size: `node --experimental-strip-types bench/trello-import-file.ts
 * FILE LINES`. Used by `npm run bench:import` (docs/data-at-scale.md).
 *
 * The mix, per line: 60 % one address, 30 % two, 10 % three to five; 90 % of addresses verified;
 * 20 % with a Google sign-in (a fifth of those Google-only, without a Trello password); 10 %
 * managed by one of 500 Trello Enterprises; and the conflicts an operator meets: 0.5 % verify an
 * address another member verified earlier, 0.05 % claim another member's Google subject, 0.1 %
 * repeat an earlier member's id (a later line replaces it), 0.01 % are malformed (skipped).
 * Lines average about 350 bytes, as in the file of issue 14 (354 MB for a million lines).
 */

/** Small deterministic generator (mulberry32): the same file for the same size, on any machine. */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST = ['Grace', 'Ada', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Margaret', 'Ken', 'Frances', 'Niklaus', 'Radia', 'John', 'Katherine', 'Dennis', 'Hedy', 'Tim'];
const LAST = ['Hopper', 'Lovelace', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Hamilton', 'Thompson', 'Allen', 'Wirth', 'Perlman', 'McCarthy', 'Johnson', 'Ritchie', 'Lamarr', 'Berners-Lee'];
const DOMAINS = ['example.com', 'acme.example', 'mail.example.org', 'corp.example.net', 'uni.example.edu'];
const B64 = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export const memberId = (i: number) => `5f${i.toString(16).padStart(22, '0')}`;

/** The lines of a file of `count` lines, one string (without newline) at a time. */
export function* importLines(count: number, seed = 14): Generator<string> {
  const rnd = random(seed);
  const pick = <T>(list: readonly T[]) => list[Math.floor(rnd() * list.length)]!;
  const iso = (year: number) => new Date(Date.UTC(year, Math.floor(rnd() * 12), 1 + Math.floor(rnd() * 28), Math.floor(rnd() * 24))).toISOString();
  const hash = () => {
    let s = '$2b$10$';
    for (let i = 0; i < 53; i += 1) s += B64[Math.floor(rnd() * 64)];
    return s;
  };
  const sharedPool: string[] = [];
  const subs: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const r = rnd();
    if (r < 0.0001) {
      yield i % 2 ? `{"id":"${memberId(i)}","username":"broken${i}",` : JSON.stringify({ id: memberId(i), username: `bad${i}`, emails: [{ address: `not-an-address-${i}` }] });
      continue;
    }
    // A repeated id: an earlier member comes again (the later line replaces it).
    const n = r < 0.0011 && i > 10 ? Math.floor(rnd() * i) : i;
    const first = pick(FIRST);
    const last = pick(LAST);
    const size = rnd();
    const addresses = size < 0.6 ? 1 : size < 0.9 ? 2 : 3 + Math.floor(rnd() * 3);
    const emails: Record<string, unknown>[] = [];
    for (let a = 0; a < addresses; a += 1) {
      emails.push({
        address: `${first}.${last}.${n}${a ? `.${a}` : ''}@${pick(DOMAINS)}`.toLowerCase(),
        verified: rnd() < 0.9,
        ...(a === 0 ? { primary: true } : {}),
        lastUsedAt: iso(2019 + Math.floor(rnd() * 7)),
        addedAt: iso(2012 + Math.floor(rnd() * 7)),
      });
    }
    // An address another member verified earlier (a family's shared inbox, a reused work address).
    if (rnd() < 0.005 && sharedPool.length) emails.push({ address: pick(sharedPool), verified: true });
    else if (rnd() < 0.01) sharedPool.push(String(emails[0]!.address));
    const member: Record<string, unknown> = { id: memberId(n), username: `${first}${last}${n}`.toLowerCase(), fullName: `${first} ${last}` };
    const google = rnd() < 0.2;
    member.passwordHash = google && rnd() < 0.2 ? null : hash();
    if (google) {
      const gmail = `${first}${last}${n}@gmail.com`.toLowerCase();
      emails.push({ address: gmail, verified: true });
      // Another member's Google subject, now and then: imported without it, flagged.
      const sub = rnd() < 0.0025 && subs.length ? pick(subs) : `1${String(n).padStart(20, '0')}`;
      subs.push(sub);
      if (subs.length > 1000) subs.shift();
      member.google = { sub, email: gmail };
    }
    member.emails = emails;
    if (rnd() < 0.1) {
      const e = Math.floor(rnd() * 500);
      member.enterprise = { id: `ent_${e}`, name: `Enterprise ${e}` };
    }
    yield JSON.stringify(member);
  }
}

/** Writes the file, honouring the stream's back-pressure (a million lines never sit in memory). */
export async function writeImportFile(path: string, count: number): Promise<void> {
  const out = createWriteStream(path);
  let chunk = '';
  for (const line of importLines(count)) {
    chunk += `${line}\n`;
    if (chunk.length > 1 << 16) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
}

if (import.meta.main) {
  const [path, lines] = process.argv.slice(2);
  if (!path || !Number(lines)) {
    process.stderr.write('usage: node --experimental-strip-types bench/trello-import-file.ts FILE LINES\n');
    process.exit(2);
  }
  await writeImportFile(path, Number(lines));
}
