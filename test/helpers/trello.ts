import { Readable } from 'node:stream';
import bcrypt from 'bcryptjs';
import type { Registry } from '../../src/registry.ts';
import { importMembers } from '../../src/legacy-trello/legacy-import.ts';

export const TRELLO_PASSWORD = 'my old trello password';
/** Cost 4 keeps tests fast; the import accepts any cost from 4 to 31. */
export const TRELLO_HASH = bcrypt.hashSync(TRELLO_PASSWORD, 4);

let counter = 0;

/** One legacy member as a JSON object of the import format, with sensible defaults. */
export function legacyMember(fields: Record<string, unknown> = {}) {
  counter += 1;
  const id = `tm${Date.now().toString(36)}${counter}`;
  return {
    id,
    username: `user${counter}`,
    fullName: 'Grace Hopper',
    passwordHash: TRELLO_HASH,
    emails: [{ address: `${id}@example.com`, verified: true, primary: true, lastUsedAt: '2025-06-01T00:00:00Z' }],
    ...fields,
  };
}

/** Imports members (objects or raw lines) through the real streaming import. */
export async function importLegacy(registry: Registry, members: (Record<string, unknown> | string)[]) {
  const text = members.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join('\n');
  return importMembers({ db: registry.db, trelloMembers: registry.trello.members, clock: registry.clock }, Readable.from([text]));
}
