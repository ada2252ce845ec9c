import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { Clock } from '../shared/clock.ts';
import type { Database, Queryable } from '../persistence/db.ts';
import type { ImportedMember, TrelloMemberQueries } from '../persistence/queries/trello-members.ts';
import { normalizeEmail } from '../identity/email-address.ts';
import { BCRYPT_HASH } from './linking.ts';

/**
 * Import of legacy Trello accounts from JSON Lines (format: docs/trello-import-format.md).
 * Streams the file line by line (a million lines never sit in memory), validates each line on
 * its own, and upserts in batches, one transaction per batch. A bad line is reported with its
 * number and reason and skipped; the others are imported. Running it again updates, never
 * duplicates: the Trello member id is the key.
 */
const isoDate = z.iso.datetime({ offset: true }).transform((s) => new Date(s));

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

export type LineResult = { ok: true; member: ImportedMember } | { ok: false; reason: string };

/** Parses and checks one line; never throws. */
export function parseLine(text: string): LineResult {
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
  const parsed = line.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, reason: `${issue.path.join('.') || 'line'}: ${issue.message}` };
  }
  const data = parsed.data;
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
  skipped: { line: number; reason: string }[];
  /** Imported, with something the operator should know (a repeated id, a Google subject left out, a shared address). */
  flagged: { line: number; reason: string }[];
}

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
  const batchSize = options.batchSize ?? 2000;
  const summary: ImportSummary = { lines: 0, inserted: 0, updated: 0, linked: 0, skipped: [], flagged: [] };
  // Rows written at or after this instant were written by this run: a member id met again
  // in a later batch is a repeated line, not an update of an earlier import.
  const runStart = new Date(deps.clock.now());
  let batch: Pending[] = [];

  const skip = (line: number, reason: string) => {
    summary.skipped.push({ line, reason });
    options.onSkip?.(line, reason);
  };
  const flag = (line: number, reason: string) => {
    summary.flagged.push({ line, reason });
    options.onFlag?.(line, reason);
  };

  /**
   * Writes lines in one transaction. Everything a line can break is checked first, set-based,
   * so that it becomes a remark on that line instead of an error for the whole batch. Returns
   * the remarks, reported only once the transaction committed.
   */
  async function write(tx: Queryable, lines: Pending[]): Promise<{ line: number; reason: string }[]> {
    const remarks: { line: number; reason: string }[] = [];
    // The same member id twice in one batch: the later line wins, as it would across batches.
    const byId = new Map<string, Pending>();
    const repeated = new Set<string>();
    for (const p of lines) {
      const earlier = byId.get(p.member.memberId);
      if (earlier) {
        remarks.push({ line: p.line, reason: `id ${p.member.memberId} already on line ${earlier.line}: this line replaces it` });
        repeated.add(p.member.memberId);
      }
      byId.set(p.member.memberId, p);
    }
    const unique = [...byId.values()];
    const known = await deps.trelloMembers.importPrecheck(tx, unique.map((p) => ({ memberId: p.member.memberId, googleSub: p.member.googleSub })), runStart);
    // A Google subject is unique across members: a second claim is imported without it (the
    // member still logs in with the Trello password); a later run can give it once it is free.
    const subs = new Map<string, string>();
    for (const p of unique) {
      const check = known.get(p.member.memberId);
      if (check?.seenThisRun && !repeated.has(p.member.memberId)) remarks.push({ line: p.line, reason: `id ${p.member.memberId} already on an earlier line: this line replaces it` });
      const sub = p.member.googleSub;
      if (!sub || check?.linked) continue;
      const holder = check?.subHolder ?? subs.get(sub);
      if (holder && holder !== p.member.memberId) {
        remarks.push({ line: p.line, reason: `google.sub is already member ${holder}'s: imported without it` });
        p.member = { ...p.member, googleSub: null, googleEmail: null };
      } else {
        subs.set(sub, p.member.memberId);
      }
    }
    const counts = await deps.trelloMembers.upsertBatch(tx, unique.map((p) => p.member), new Date(deps.clock.now()));
    // A linked member's Enterprise set, renamed or dropped by this import changes who manages its
    // account (account_managers, decision 0030), in the batch's transaction. Unlinked members
    // have no account to manage yet.
    await deps.trelloMembers.syncEnterpriseManagers(tx, counts.linked, new Date(deps.clock.now()));
    // An address verified on two unlinked members: kept on both (either may be the person), and
    // flagged. At login the member whose Trello password matches is the one (decision 0019).
    const lineOf = new Map(unique.map((p) => [p.member.memberId, p.line]));
    for (const shared of await deps.trelloMembers.sharedVerifiedAddresses(tx, counts.open)) {
      remarks.push({ line: lineOf.get(shared.member_id)!, reason: `address ${shared.email} is also verified on member ${shared.others.join(', ')}: whose Trello password matches at login gets it` });
    }
    summary.inserted += counts.inserted;
    summary.updated += counts.updated + (lines.length - unique.length);
    summary.linked += counts.skippedLinked;
    return remarks.sort((a, b) => a.line - b.line);
  }

  const writeBatch = async (lines: Pending[]) => {
    try {
      for (const r of await deps.db.transaction((tx) => write(tx, lines))) flag(r.line, r.reason);
    } catch (err) {
      if (!dataError(err)) throw err;
      // Something the checks did not foresee: the batch was rolled back. Line by line, so only
      // the line at fault is skipped, with the database's reason, and the rest is imported.
      for (const p of lines) {
        try {
          for (const r of await deps.db.transaction((tx) => write(tx, [p]))) flag(r.line, r.reason);
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
  // they have grown tenfold since (500, 5,000, 50,000 … members: a handful of sampled reads,
  // about 30,000 rows each, whatever the size), and at the end. Autovacuum may be off.
  let analyzeAt = 0;
  let analyzedAt = -1;
  const analyze = async () => {
    const written = summary.inserted + summary.updated;
    if (written === analyzedAt) return;
    await deps.trelloMembers.analyze();
    analyzedAt = written;
    analyzeAt = Math.max(written, 1) * 10;
  };
  const analyzeWhenGrown = async () => {
    if (summary.inserted + summary.updated >= analyzeAt) await analyze();
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
