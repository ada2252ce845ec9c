import { createReadStream } from 'node:fs';
import { openDatabase } from './src/persistence/db.ts';
import { migrate } from './src/persistence/migrate.ts';
import { importMembers } from './src/legacy-trello/legacy-import.ts';
import { createTrelloMemberQueries } from './src/persistence/queries/trello-members.ts';
import { systemClock } from './src/shared/clock.ts';
const url = process.argv[2] === 'pg' ? 'postgres://postgres@127.0.0.1:5432/postgres' : undefined;
const db0 = await openDatabase({ url, schema: url ? 'scale_probe3' : undefined, poolSize: 1 });
await migrate(db0);
for (const pass of [1, 2]) {
const times = new Map<string, number>();
const wrap = (q: any) => ({ ...q, query: async (sql: string, p: any) => { const t = performance.now(); try { return await q.query(sql, p); } finally { const k = sql.replace(/\s+/g, ' ').slice(0, 50); times.set(k, (times.get(k) ?? 0) + performance.now() - t); } } });
const db = { ...db0, query: wrap(db0).query, transaction: (fn: any) => db0.transaction((tx: any) => fn(wrap(tx))) };
const t = performance.now();
await importMembers({ db: db as any, trelloMembers: createTrelloMemberQueries(db as any), clock: systemClock }, createReadStream('/tmp/lanyard-bench-import-20000.jsonl'));
console.log(pass, Math.round(performance.now() - t), [...times].map(([k, v]) => `${Math.round(v)} ${k}`).join('\n'));
}
if (url) await db0.query('DROP SCHEMA scale_probe3 CASCADE'); await db0.close();
