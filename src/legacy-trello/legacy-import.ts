import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { Clock } from '../shared/clock.ts';
import type { Database, Queryable } from '../persistence/db.ts';
import type { ImportedMember, TrelloMemberQueries } from '../persistence/queries/trello-members.ts';
import { normalizeEmail } from '../identity/email-address.ts';
import { BCRYPT_HASH } from './linking.ts';
import { IdSet } from './id-set.ts';

/**
 * Import of legacy Trello accounts from JSON Lines (format: docs/trello-import-format.md).
 * Streams the file line by line (a million lines never sit in memory), validates each line on
 * its own, and upserts in batches, one transaction per batch. A bad line is reported with its
 * number and reason and skipped; the others are imported. Running it again updates, never
 * duplicates: the Trello member id is the key.
 */
const isoDateString = z.iso.datetime({ offset: true });
/**
 * PostgreSQL stores years 0001–9999 written as ISO text (year 0000 is refused; a later year is not
 * four digits): a date outside them is a bad line here, not a failed batch written line by line.
 */
const storable = (s: string): boolean => {
  const year = new Date(s).getUTCFullYear();
  return year >= 1 && year <= 9999;
};
const isoDate = isoDateString.refine(storable, 'date out of range (years 0001–9999 in UTC)').transform((s) => new Date(s));
/** The very pattern zod checks `isoDate` with: the fast path below accepts exactly what it accepts. */
const ISO_DATE: RegExp = isoDateString._zod.def.pattern ?? /(?!)/;
const line = z.object({
  id: z.string().trim().min(1, 'missing id').max(64),
  username: z.string().trim().min(1, 'missing username').max(100),
  fullName: z.string().max(200).nullish(),
  passwordHash: z.string().nullish(),
  emails: z.array(z.object({
    address: z.string().max(320),
    verified: z.boolean().default(false),
    primary: z.boolean().default(false),
    lastUsedAt: isoDate.nullish(),
    addedAt: isoDate.nullish(),
  })).min(1, 'no email address').max(50),
  google: z.object({ sub: z.string().min(1).max(255), email: z.string().max(320).nullish() }).nullish(),
  enterprise: z.object({ id: z.string().min(1).max(64), name: z.string().max(200).nullish() }).nullish(),
});

const holdsNul = (value: unknown): boolean =>
  typeof value === 'string' ? value.includes('\0')
    : typeof value === 'object' && value !== null ? Object.entries(value).some(([k, v]) => k.includes('\0') || holdsNul(v))
      : false;

type Raw = Record<string, unknown>;
const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const optionalString = (v: unknown, max: number) => v == null || (typeof v === 'string' && v.length <= max);
const optionalDate = (v: unknown) => v == null || (typeof v === 'string' && ISO_DATE.test(v) && storable(v));

/**
 * The schema above, checked by hand for a line that meets it: the same output as `line.parse`,
 * in a tenth of the time (zod's object machinery cost ~20 µs a line, the import's largest
 * share of Node's CPU). It only ever accepts: a line it does not accept goes through zod, which
 * gives the reason. test/unit/trello/import-line.test.ts compares both on generated files.
 */
function fastLine(json: Raw): z.output<typeof line> | undefined {
  const { id, username, fullName, passwordHash, emails, google, enterprise } = json;
  if (typeof id !== 'string' || typeof username !== 'string') return undefined;
  const memberId = id.trim();
  const name = username.trim();
  if (!memberId || memberId.length > 64 || !name || name.length > 100) return undefined;
  if (!optionalString(fullName, 200) || !optionalString(passwordHash, Infinity)) return undefined;
  if (!Array.isArray(emails) || emails.length < 1 || emails.length > 50) return undefined;
  const list: z.output<typeof line>['emails'] = [];
  for (const e of emails as unknown[]) {
    if (!isObject(e)) return undefined;
    const { address, verified, primary, lastUsedAt, addedAt } = e;
    if (typeof address !== 'string' || address.length > 320) return undefined;
    if ((verified !== undefined && typeof verified !== 'boolean') || (primary !== undefined && typeof primary !== 'boolean')) return undefined;
    if (!optionalDate(lastUsedAt) || !optionalDate(addedAt)) return undefined;
    list.push({
      address,
      verified: verified ?? false,
      primary: primary ?? false,
      lastUsedAt: lastUsedAt == null ? null : new Date(lastUsedAt as string),
      addedAt: addedAt == null ? null : new Date(addedAt as string),
    });
  }
  if (google != null && (!isObject(google) || typeof google.sub !== 'string' || !google.sub || google.sub.length > 255 || !optionalString(google.email, 320))) return undefined;
  if (enterprise != null && (!isObject(enterprise) || typeof enterprise.id !== 'string' || !enterprise.id || enterprise.id.length > 64 || !optionalString(enterprise.name, 200))) return undefined;
  return {
    id: memberId,
    username: name,
    fullName: (fullName as string | null | undefined) ?? null,
    passwordHash: (passwordHash as string | null | undefined) ?? null,
    emails: list,
    google: google == null ? null : { sub: google.sub as string, email: (google.email as string | null | undefined) ?? null },
    enterprise: enterprise == null ? null : { id: enterprise.id as string, name: (enterprise.name as string | null | undefined) ?? null },
  };
}

function schemaLine(json: unknown): { ok: true; data: z.output<typeof line> } | { ok: false; reason: string } {
  const parsed = line.safeParse(json);
  if (parsed.success) return { ok: true, data: parsed.data };
  const issue = parsed.error.issues[0]!;
  return { ok: false, reason: `${issue.path.join('.') || 'line'}: ${issue.message}` };
}

export type LineResult = { ok: true; member: ImportedMember } | { ok: false; reason: string };

/**
 * Parses and checks one line; never throws. `schemaOnly` skips the hand-written check (the
 * test that holds it to the schema compares both).
 */
export function parseLine(text: string, options: { schemaOnly?: boolean } = {}): LineResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'invalid JSON' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { ok: false, reason: 'not a JSON object' };
  // PostgreSQL text cannot hold U+0000: refused here, with its line, not by the database.
  if (text.includes('\\u0000') && holdsNul(json)) return { ok: false, reason: 'a value contains a NUL character (\\u0000)' };
  if (!('id' in json) || (json as { id: unknown }).id === '' || (json as { id: unknown }).id == null) return { ok: false, reason: 'missing id' };
  let data = options.schemaOnly ? undefined : fastLine(json as Raw);
  if (!data) {
    const parsed = schemaLine(json);
    if (!parsed.ok) return parsed;
    data = parsed.data;
  }
  if (data.passwordHash && !BCRYPT_HASH.test(data.passwordHash)) return { ok: false, reason: 'passwordHash: unknown hash format (expected bcrypt $2a$/$2b$/$2y$)' };
  const emails: ImportedMember['emails'] = [];
  for (const [i, e] of data.emails.entries()) {
    const email = normalizeEmail(e.address);
    if (!email) return { ok: false, reason: `emails.${i}.address: malformed email ${JSON.stringify(e.address.slice(0, 80))}` };
    if (emails.some((x) => x.email === email)) continue; // the same address twice: keep the first
    emails.push({ email, verified: e.verified, primary: e.primary, lastUsedAt: e.lastUsedAt ?? null, addedAt: e.addedAt ?? null });
  }
  const googleEmail = data.google?.email ? normalizeEmail(data.google.email) : null;
  if (data.google?.email && !googleEmail) return { ok: false, reason: 'google.email: malformed email' };
  return {
    ok: true,
    member: {
      memberId: data.id,
      username: data.username,
      fullName: data.fullName ?? null,
      passwordHash: data.passwordHash ?? null,
      googleSub: data.google?.sub ?? null,
      googleEmail: googleEmail ?? null,
      enterpriseId: data.enterprise?.id ?? null,
      enterpriseName: data.enterprise?.name ?? null,
      emails,
    },
  };
}

export interface ImportSummary {
  lines: number;
  inserted: number;
  updated: number;
  /** Already linked: only their names were refreshed. */
  linked: number;
  /** The first REMARKS_KEPT skipped lines (all of them are counted in skippedCount and passed to onSkip). */
  skipped: { line: number; reason: string }[];
  /** Imported, with something the operator should know (a repeated id, a Google subject left out, a shared address): the first REMARKS_KEPT. */
  flagged: { line: number; reason: string }[];
  skippedCount: number;
  flaggedCount: number;
}

/** Remarks of each kind kept in the summary; the rest are counted (and reported as they come). */
export const REMARKS_KEPT = 10_000;

interface Pending { line: number; member: ImportedMember }

/** SQLSTATE classes a line's own data can cause: data exceptions (22) and constraint violations (23). */
const dataError = (err: unknown) => /^2[23]/.test(String((err as { code?: unknown }).code ?? ''));

export async function importMembers(deps: { db: Database; trelloMembers: TrelloMemberQueries; clock: Clock }, input: Readable, options: {
  batchSize?: number;
  /** Called after each batch with the lines read so far, for progress reports. */
  onProgress?: (linesRead: number) => void;
  /** Called for each bad line as it is found. */
  onSkip?: (line: number, reason: string) => void;
  /** Called for each line imported with a remark. */
  onFlag?: (line: number, reason: string) => void;
} = {}): Promise<ImportSummary> {
  const batchSize = options.batchSize ?? 5000;
  const summary: ImportSummary = { lines: 0, inserted: 0, updated: 0, linked: 0, skipped: [], flagged: [], skippedCount: 0, flaggedCount: 0 };
  let batch: Pending[] = [];

  // The summary keeps the first REMARKS_KEPT remarks of each kind and counts the rest: every one
  // goes to onSkip/onFlag as it is found, and a file of a million bad lines must not fill the heap.
  const skip = (line: number, reason: string) => {
    summary.skippedCount += 1;
    if (summary.skipped.length < REMARKS_KEPT) summary.skipped.push({ line, reason });
    options.onSkip?.(line, reason);
  };
  const flag = (line: number, reason: string) => {
    summary.flaggedCount += 1;
    if (summary.flagged.length < REMARKS_KEPT) summary.flagged.push({ line, reason });
    options.onFlag?.(line, reason);
  };

  /**
   * Writes lines in one transaction. Everything a line can break is checked first, set-based,
   * so that it becomes a remark on that line instead of an error for the whole batch. Returns
   * the remarks, reported only once the transaction committed. `earlier` holds the member ids
   * of the batch already met on an earlier batch's line.
   */
  async function write(tx: Queryable, lines: Pending[], earlier: ReadonlySet<string>): Promise<{ line: number; reason: string }[]> {
    const remarks: { line: number; reason: string }[] = [];
    // The same member id twice in one batch: the later line wins, as it would across batches.
    const byId = new Map<string, Pending>();
    const repeated = new Set<string>();
    for (const p of lines) {
      const before = byId.get(p.member.memberId);
      if (before) {
        remarks.push({ line: p.line, reason: `id ${p.member.memberId} already on line ${before.line}: this line replaces it` });
        repeated.add(p.member.memberId);
      }
      byId.set(p.member.memberId, p);
    }
    const unique = [...byId.values()];
    const known = await deps.trelloMembers.importPrecheck(tx, unique.map((p) => p.member));
    const present = new Set<string>();
    const linked = new Set<string>();
    // A Google subject is unique across members: a second claim is imported without it (the
    // member still logs in with the Trello password); a later run can give it once it is free.
    const subs = new Map<string, string>();
    const members: ImportedMember[] = [];
    for (const p of unique) {
      const id = p.member.memberId;
      const check = known.get(id);
      if (check?.present) present.add(id);
      if (check?.linked) linked.add(id);
      if (earlier.has(id) && !repeated.has(id)) remarks.push({ line: p.line, reason: `id ${id} already on an earlier line: this line replaces it` });
      let member = p.member;
      const sub = member.googleSub;
      if (sub && !check?.linked) {
        const holder = check?.subHolder ?? subs.get(sub);
        if (holder && holder !== id) {
          remarks.push({ line: p.line, reason: `google.sub is already member ${holder}'s: imported without it` });
          member = { ...member, googleSub: null, googleEmail: null };
        } else {
          subs.set(sub, id);
        }
      }
      members.push(member);
    }
    const { inserted } = await deps.trelloMembers.upsertBatch(tx, members, { present, linked }, new Date(deps.clock.now()));
    // A linked member's Enterprise set, renamed or dropped by this import changes who manages its
    // account (account_managers, decision 0030), in the batch's transaction. Every member that was
    // already there is synced, not only those the precheck saw linked: the precheck reads without
    // locks, and a login may link a member between it and the upsert. The sync's own statement
    // reads `linked_account_id` under the upsert's row lock; a new member has no account yet.
    await deps.trelloMembers.syncEnterpriseManagers(tx, [...present], new Date(deps.clock.now()));
    // An address verified on two unlinked members: kept on both (either may be the person), and
    // flagged. At login the member whose Trello password matches is the one (decision 0019).
    const lineOf = new Map(unique.map((p) => [p.member.memberId, p.line]));
    const unlinked = linked.size ? members.filter((m) => !linked.has(m.memberId)) : members;
    for (const shared of await deps.trelloMembers.sharedVerifiedAddresses(tx, unlinked)) {
      remarks.push({ line: lineOf.get(shared.member_id)!, reason: `address ${shared.email} is also verified on member ${shared.others.join(', ')}: whose Trello password matches at login gets it` });
    }
    summary.inserted += inserted.length;
    summary.updated += unique.length - inserted.length + (lines.length - unique.length);
    summary.linked += linked.size;
    return remarks.sort((a, b) => a.line - b.line);
  }

  /**
   * Every member id met so far (compactly: 40 to 60 bytes each), to tell a line that repeats an
   * earlier line's id — flagged — from a member an earlier run imported. Looked up before the
   * batch's transaction, so that the line-by-line retry below sees the same answer.
   */
  const met = new IdSet();
  const writeBatch = async (lines: Pending[]) => {
    const earlier = new Set<string>();
    const inBatch = new Set<string>();
    for (const p of lines) {
      const id = p.member.memberId;
      if (inBatch.has(id)) continue;
      inBatch.add(id);
      if (met.addHas(id)) earlier.add(id);
    }
    try {
      for (const r of await deps.db.transaction((tx) => write(tx, lines, earlier))) flag(r.line, r.reason);
    } catch (err) {
      if (!dataError(err)) throw err;
      // Something the checks did not foresee: the batch was rolled back. Line by line, so only
      // the line at fault is skipped, with the database's reason, and the rest is imported.
      const done = new Set<string>();
      for (const p of lines) {
        const id = p.member.memberId;
        // A line whose id came earlier in this batch: the earlier line was written just before.
        const before = done.has(id) || earlier.has(id) ? new Set([id]) : new Set<string>();
        try {
          for (const r of await deps.db.transaction((tx) => write(tx, [p], before))) flag(r.line, r.reason);
          done.add(id);
        } catch (lineErr) {
          if (!dataError(lineErr)) throw lineErr;
          skip(p.line, `rejected by the database: ${(lineErr as Error).message.split('\n')[0]!.slice(0, 200)}`);
        }
      }
    }
  };
  /**
   * Batches are written one at a time, in order, but the next batch is read and checked while
   * the previous one is written (on a server, Node and PostgreSQL then work at once on two
   * cores). At most two batches are held: the one being written and the one being read.
   */
  let writing: Promise<void> | undefined;
  let failure: { err: unknown } | undefined;
  const settle = async () => {
    await writing;
    writing = undefined;
    if (failure) throw failure.err;
  };
  const flush = async () => {
    await settle();
    if (!batch.length) return;
    const lines = batch;
    const linesRead = summary.lines;
    batch = [];
    writing = writeBatch(lines).then(async () => {
      options.onProgress?.(linesRead);
      await analyzeWhenGrown();
    }, (err: unknown) => { failure = { err }; });
  };

  // Statistics are never missing (decision 0042): without them the planner guesses the tables'
  // sizes, and a guess from an empty table made every batch's delete scan the whole address
  // table (issue 14). So the tables loaded are analysed after the first batch and each time
  // they have grown tenfold since (5,000, 50,000, 500,000 … members), on a small sample (3,000
  // rows: the import's own statements are index probes whatever the statistics, and a full
  // ANALYZE in the middle of the run stalled it for ~300 ms each time), and at the end in full
  // (about 30,000 rows each, whatever the size). Autovacuum may be off.
  let analyzeAt = 0;
  let analyzed = { at: -1, quick: true };
  const analyze = async (quick = false) => {
    const written = summary.inserted + summary.updated;
    if (written === analyzed.at && (quick || !analyzed.quick)) return;
    if (quick) await deps.db.transaction((tx) => deps.trelloMembers.analyzeSample(tx));
    else await deps.trelloMembers.analyze();
    analyzed = { at: written, quick };
    analyzeAt = Math.max(written, 1) * 10;
  };
  const analyzeWhenGrown = async () => {
    if (summary.inserted + summary.updated >= analyzeAt) await analyze(true);
  };

  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const text of lines) {
    summary.lines += 1;
    if (!text.trim()) continue;
    const result = parseLine(text);
    if (!result.ok) {
      skip(summary.lines, result.reason);
      continue;
    }
    batch.push({ line: summary.lines, member: result.member });
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  await settle();
  await analyze();
  return summary;
}
