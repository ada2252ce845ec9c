import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { Clock } from '../../shared/clock.ts';
import type { Database } from '../../persistence/db.ts';
import type { ImportedMember, TrelloQueries } from '../../persistence/queries/trello.ts';
import { normalizeEmail } from '../email-address.ts';
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
}

export async function importMembers(deps: { db: Database; trello: TrelloQueries; clock: Clock }, input: Readable, options: {
  batchSize?: number;
  /** Called after each batch with the bytes read so far, for a progress bar. */
  onProgress?: (linesRead: number) => void;
  /** Called for each bad line as it is found. */
  onSkip?: (line: number, reason: string) => void;
} = {}): Promise<ImportSummary> {
  const batchSize = options.batchSize ?? 500;
  const summary: ImportSummary = { lines: 0, inserted: 0, updated: 0, linked: 0, skipped: [] };
  let batch: ImportedMember[] = [];

  const flush = async () => {
    if (!batch.length) return;
    // A member id seen twice in one batch: the later line wins, as it would across batches.
    const unique = [...new Map(batch.map((m) => [m.memberId, m])).values()];
    const counts = await deps.db.transaction((tx) => deps.trello.upsertBatch(tx, unique, new Date(deps.clock.now())));
    summary.inserted += counts.inserted;
    summary.updated += counts.updated + (batch.length - unique.length);
    summary.linked += counts.skippedLinked;
    batch = [];
    options.onProgress?.(summary.lines);
  };

  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const text of lines) {
    summary.lines += 1;
    if (!text.trim()) continue;
    const result = parseLine(text);
    if (!result.ok) {
      summary.skipped.push({ line: summary.lines, reason: result.reason });
      options.onSkip?.(summary.lines, result.reason);
      continue;
    }
    batch.push(result.member);
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  return summary;
}
