import { newId } from '../shared/ids.ts';
import type { AccountQueries } from '../persistence/queries/accounts.ts';
import type { Queryable } from '../persistence/db.ts';

// Addresses that look like a real population: common given names and family names, a mix of
// mail providers and company domains (all under reserved example names: nothing is ever sent
// to a real person).
const FIRST_NAMES = ['ada', 'grace', 'alan', 'edsger', 'barbara', 'donald', 'margaret', 'ken', 'dennis', 'frances', 'john', 'niklaus', 'radia', 'tim',
  'linus', 'guido', 'bjarne', 'anita', 'katherine', 'dorothy', 'mary', 'james', 'robert', 'patricia', 'jennifer', 'michael', 'linda', 'william',
  'elizabeth', 'david', 'susan', 'joseph', 'jessica', 'thomas', 'sarah', 'charles', 'karen', 'daniel', 'nancy', 'matthew', 'lisa', 'anthony',
  'sophie', 'lucas', 'emma', 'noah', 'mia', 'leon', 'yuki', 'hiro', 'priya', 'arjun', 'fatima', 'omar', 'chen', 'wei', 'olga', 'ivan', 'ines', 'joao'];
const LAST_NAMES = ['lovelace', 'hopper', 'turing', 'dijkstra', 'liskov', 'knuth', 'hamilton', 'thompson', 'ritchie', 'allen', 'mccarthy', 'wirth',
  'perlman', 'berners-lee', 'torvalds', 'van-rossum', 'stroustrup', 'borg', 'johnson', 'vaughan', 'jackson', 'smith', 'brown', 'garcia',
  'miller', 'davis', 'rodriguez', 'martinez', 'hernandez', 'lopez', 'gonzalez', 'wilson', 'anderson', 'taylor', 'moore', 'martin', 'lee',
  'mueller', 'schmidt', 'schneider', 'fischer', 'dubois', 'lefebvre', 'rossi', 'russo', 'tanaka', 'suzuki', 'sato', 'kumar', 'sharma',
  'khan', 'ali', 'wang', 'zhang', 'ivanova', 'petrov', 'silva', 'santos', 'nowak', 'kowalski', 'nielsen', 'jensen', 'novak', 'horvat'];
const DOMAINS = ['mail.example.com', 'post.example.net', 'inbox.example.org', 'example.com', 'example.net', 'example.org', 'acme.example',
  'globex.example', 'initech.example', 'umbrella.example', 'hooli.example', 'stark-industries.example', 'wayne-enterprises.example',
  'cyberdyne.example', 'tyrell.example', 'soylent.example', 'wonka.example', 'aperture.example', 'black-mesa.example', 'massive-dynamic.example'];

export interface SeedProgress { inserted: number; done: number; count: number; seconds: number }

/**
 * Creates `count` verified test accounts set-based: one INSERT … SELECT FROM unnest(ids) per
 * `batch` rows (ids from `newId`, as every account's), addresses first.last.k@domain for
 * k = `from` … `from` + count − 1, so a second run with another `from` adds more, and one already
 * there is skipped. Every seeded account has the SAME password hash, computed once by the caller:
 * hashing a million passwords at argon2id's cost would take hours of CPU, and the logins a
 * benchmark makes verify that one hash at full cost all the same. ANALYZE at the end, so the
 * planner knows the table's new size at once (decision 0042).
 */
export async function seedAccounts(deps: { db: Queryable; accounts: Pick<AccountQueries, 'insertSeeded'> }, options: {
  count: number; from?: number; passwordHash: string; batch?: number; now?: Date; onBatch?: (p: SeedProgress) => void;
}): Promise<{ inserted: number; seconds: number }> {
  const batch = options.batch ?? 10_000;
  const from = options.from ?? 1;
  const now = options.now ?? new Date();
  const started = performance.now();
  let inserted = 0;
  for (let done = 0; done < options.count; done += batch) {
    const n = Math.min(batch, options.count - done);
    const ids = Array.from({ length: n }, () => newId('acc'));
    inserted += await deps.accounts.insertSeeded({ ids, firstIndex: from + done, passwordHash: options.passwordHash, now, firstNames: FIRST_NAMES, lastNames: LAST_NAMES, domains: DOMAINS });
    options.onBatch?.({ inserted, done: done + n, count: options.count, seconds: (performance.now() - started) / 1000 });
  }
  await deps.db.query('ANALYZE accounts');
  return { inserted, seconds: (performance.now() - started) / 1000 };
}

/** The address `seedAccounts` gives account k (for benchmarks that sign in as one). */
export function seededEmail(k: number): string {
  const first = FIRST_NAMES[k % FIRST_NAMES.length]!;
  const last = LAST_NAMES[Math.floor(k / FIRST_NAMES.length) % LAST_NAMES.length]!;
  const domain = DOMAINS[(k * 7919) % DOMAINS.length]!;
  return `${first}.${last}.${k}@${domain}`;
}
