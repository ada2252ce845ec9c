/**
 * The hosts of a PostgreSQL connection string, as libpq reads them (PostgreSQL 15 docs §34.1.1.2
 * "Specifying Multiple Hosts"): `postgres://user@h1:5432,h2:5433/db?target_session_attrs=read-write`.
 * node-postgres understands neither the host list nor `target_session_attrs`, so this module
 * parses them, and `failover-pool.ts` tries the hosts in turn (docs/decisions/0045-database-failover.md).
 *
 * Pure: no driver here, so the configuration schema can validate DATABASE_URL at start-up.
 */

export interface DatabaseHost {
  host: string;
  port: number;
}

/**
 * Which server a new connection accepts (libpq's `target_session_attrs`):
 * - `any`: the first that answers;
 * - `read-write`: the first whose `SHOW transaction_read_only` is `off` (what libpq checks);
 * - `primary`: the first where `pg_is_in_recovery()` is false.
 * libpq's `read-only`, `standby` and `prefer-standby` make no sense for a service that writes on
 * every login, so they are refused.
 */
export const TARGET_SESSION_ATTRS = ['any', 'read-write', 'primary'] as const;
export type TargetSessionAttrs = (typeof TARGET_SESSION_ATTRS)[number];

export interface DatabaseTarget {
  hosts: DatabaseHost[];
  targetSessionAttrs: TargetSessionAttrs;
  /** Whether connections need the host list (more than one host, or a session check). */
  failover: boolean;
  /** A single-host URL for `host`: same credentials, database and parameters, less `target_session_attrs`. */
  urlFor(host: DatabaseHost): string;
  /** `h1:5432,h2:5433/db` for messages: never the credentials. */
  where: string;
}

export class DatabaseUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseUrlError';
  }
}

const DEFAULT_PORT = 5432;
const URL_SHAPE = /^(postgres(?:ql)?):\/\/(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/;

function parseHost(text: string, index: number, count: number): DatabaseHost {
  const which = count > 1 ? `host ${index + 1}` : 'the host';
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::(\d*))?$/.exec(text);
  const plain = /^([^:[\]]+)(?::(\d*))?$/.exec(text);
  const match = bracketed ?? plain;
  if (!match) throw new DatabaseUrlError(`${which} is not host[:port] or [ipv6]:port`);
  const port = match[2] === undefined || match[2] === '' ? DEFAULT_PORT : Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new DatabaseUrlError(`the port of ${which} must be 1-65535`);
  return { host: match[1]!, port };
}

const hostText = (h: DatabaseHost) => `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`;

/**
 * Parses a postgres:// URL. A URL without a host (a Unix socket through `?host=`) is kept as it
 * is: one target, no failover. Throws DatabaseUrlError with a message that never repeats the URL
 * (it may hold a password).
 */
export function parseDatabaseUrl(url: string): DatabaseTarget {
  const match = URL_SHAPE.exec(url);
  if (!match) throw new DatabaseUrlError('must be postgres://[user[:password]@]host[:port][,host[:port]]…/database[?…]');
  const [, scheme, userinfo, hostList = '', path = '', query = ''] = match;
  const params = new URLSearchParams(query);
  const attrs = params.getAll('target_session_attrs');
  if (attrs.length > 1) throw new DatabaseUrlError('target_session_attrs is given more than once');
  const targetSessionAttrs = (attrs[0] ?? 'any') as TargetSessionAttrs;
  if (!TARGET_SESSION_ATTRS.includes(targetSessionAttrs)) {
    throw new DatabaseUrlError(`target_session_attrs must be one of ${TARGET_SESSION_ATTRS.join(', ')}`);
  }
  params.delete('target_session_attrs');
  const rest = params.toString();
  const names = hostList === '' ? [] : hostList.split(',');
  if (names.some((name) => name === '')) throw new DatabaseUrlError('the host list has an empty entry');
  const hosts = names.map((name, i) => parseHost(decodeURIComponent(name), i, names.length));
  const failover = hosts.length > 1 || (hosts.length === 1 && targetSessionAttrs !== 'any');
  return {
    hosts,
    targetSessionAttrs,
    failover,
    urlFor: (host) => `${scheme}://${userinfo !== undefined ? `${userinfo}@` : ''}${hostText(host)}${path}${rest ? `?${rest}` : ''}`,
    where: `${hosts.length ? hosts.map(hostText).join(',') : 'localhost'}${path || ''}`,
  };
}

/**
 * Which host a new connection tries first: the last one that was accepted, so that after a
 * failover every new connection goes straight to the new primary instead of knocking on the old
 * one first. A host that fails hands the preference to the next in the list (round the end).
 */
export function createHostSelector(count: number) {
  let preferred = 0;
  return {
    /** Indexes in the order a new connection should try them, preferred first. */
    order(): number[] {
      return Array.from({ length: count }, (_, i) => (preferred + i) % count);
    },
    preferred: () => preferred,
    accepted(index: number): void {
      preferred = index;
    },
    failed(index: number): void {
      if (preferred === index) preferred = (index + 1) % count;
    },
  };
}

export type HostSelector = ReturnType<typeof createHostSelector>;
