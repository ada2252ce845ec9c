import fc from 'fast-check';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';

/**
 * Hostile HTTP requests as fast-check arbitraries. Values are small descriptions (a string, a
 * list of bytes, a string repeated n times) turned into bytes only when sent, so a failing case
 * prints readably and shrinks.
 */

/** A value as generated: text, raw bytes (invalid UTF-8, NUL …) or text repeated (huge). */
export type Value = string | { bytes: number[] } | { repeat: string; times: number };

/** What the fuzzer knows of the running instance: real ids and tokens to mix with garbage. */
export interface Fixtures {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  accountId: string;
  email: string;
  uid: string;
  csrf: string;
}

export function bytesOf(value: Value): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if ('bytes' in value) return Buffer.from(value.bytes);
  return Buffer.from(value.repeat.repeat(value.times), 'utf8');
}

/** Percent-encodes every byte but the unreserved ones (RFC 3986 §2.3): any bytes fit in a URL. */
export function pct(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) out += /[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0').toUpperCase()}`;
  return out;
}

const NASTY = [
  '', ' ', '\u0000', 'a\u0000b', '%00', '%', '%zz', '+', '&', '=', '../../../etc/passwd', '<script>alert(1)</script>',
  "' OR '1'='1", '"; DROP TABLE accounts; --', '${7*7}', '<%= it.x %>', '{{7*7}}', '\uFEFF', '\uD800', '\uDFFF\uD800', '\u202E',
  'A'.repeat(1025), '-1', '0', '1e309', 'NaN', 'Infinity', 'null', 'true', '[]', '{}', '__proto__', 'constructor', 'toString',
  'javascript:alert(1)', 'http://evil.example/', '//evil.example', 'https://evil.example/cb', '\r\nSet-Cookie: a=b', 'ﬀ', 'İ', '𝔘𝔫𝔦',
  'authorization_code', 'refresh_token', 'openid', 'code', 'none', 'login', 'consent', 'S256', 'plain', 'yes',
];

/** Parameter and field names: the ones our forms and the protocol read, and garbage. */
export const KNOWN_NAMES = [
  '_csrf', 'email', 'password', 'new_password', 'current_password', 'code', 'name', 'given_name', 'family_name', 'nickname',
  'locale', 'zoneinfo', 'visibility[email]', 'visibility[name]', 'picture', 'remember', 'choice', 'username', 'member_id',
  'limit', 'cursor', 'avatar', 't', 'token', 'token_type_hint', 'client_id', 'client_secret', 'response_type', 'redirect_uri',
  'scope', 'state', 'nonce', 'prompt', 'login_hint', 'max_age', 'claims', 'ui_locales', 'id_token_hint', 'response_mode',
  'code_challenge', 'code_challenge_method', 'code_verifier', 'grant_type', 'refresh_token', 'resource', 'request',
  'request_uri', 'post_logout_redirect_uri', 'xsrf', 'logout', 'error', 'iss', 'a[b][c][d][e][f]', 'x[]', 'x[0]', '__proto__[polluted]',
  'constructor[prototype][polluted]',
];

export function valueArb(fixtures: Fixtures): fc.Arbitrary<Value> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ maxLength: 24 }) },
    { weight: 3, arbitrary: fc.constantFrom(...NASTY) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 16 }) },
    { weight: 2, arbitrary: fc.constantFrom(fixtures.clientId, fixtures.redirectUri, fixtures.accountId, fixtures.email, fixtures.uid, fixtures.csrf) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 16 }).map((b) => ({ bytes: [...b] })) },
    { weight: 1, arbitrary: fc.record({ repeat: fc.constantFrom('a', '\u0000', 'é', '%', '[', '𝔘', 'ab&c=d'), times: fc.integer({ min: 1_000, max: 120_000 }) }) },
  );
}

export function nameArb(): fc.Arbitrary<Value> {
  return fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...KNOWN_NAMES) }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) }, { weight: 1, arbitrary: fc.constantFrom(...NASTY) });
}

export const pairsArb = (fixtures: Fixtures) => fc.array(fc.tuple(nameArb(), valueArb(fixtures)), { maxLength: 6 });

export function encodePairs(pairs: Array<[Value, Value]>): string {
  return pairs.map(([k, v]) => `${pct(bytesOf(k))}=${pct(bytesOf(v))}`).join('&');
}

export type Body =
  | { kind: 'none' }
  | { kind: 'form'; pairs: Array<[Value, Value]> }
  | { kind: 'json'; text: string }
  | { kind: 'deep-json'; open: string; close: string; depth: number }
  | { kind: 'multipart'; boundary: string; parts: Array<{ name: Value; filename?: string | undefined; type?: string | undefined; content: Value }>; truncate: boolean }
  | { kind: 'bytes'; bytes: number[] }
  | { kind: 'huge'; fill: string; size: number };

export function bodyArb(fixtures: Fixtures): fc.Arbitrary<Body> {
  const part = fc.record({
    name: fc.oneof(fc.constantFrom<Value>('picture', '_csrf', 'other'), nameArb()),
    filename: fc.option(fc.constantFrom('a.png', 'x.svg', '', '../../evil', 'a\u0000.png', '\u202Egnp.exe'), { nil: undefined }),
    type: fc.option(fc.constantFrom('image/png', 'image/svg+xml', 'text/html', 'application/octet-stream', ''), { nil: undefined }),
    content: valueArb(fixtures),
  }, { requiredKeys: ['name', 'content'] });
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant<Body>({ kind: 'none' }) },
    { weight: 5, arbitrary: pairsArb(fixtures).map((pairs): Body => ({ kind: 'form', pairs })) },
    { weight: 2, arbitrary: fc.json({ maxDepth: 4 }).map((text): Body => ({ kind: 'json', text })) },
    { weight: 1, arbitrary: fc.record({ open: fc.constantFrom('[', '{"a":', '{"__proto__":'), close: fc.constantFrom(']', '}'), depth: fc.integer({ min: 1, max: 100_000 }) }).map((d): Body => ({ kind: 'deep-json', ...d })) },
    { weight: 2, arbitrary: fc.record({ boundary: fc.constantFrom('xyz', 'a'.repeat(70), '', '--', 'é'), parts: fc.array(part, { maxLength: 4 }), truncate: fc.boolean() }).map((m): Body => ({ kind: 'multipart', ...m })) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 512 }).map((b): Body => ({ kind: 'bytes', bytes: [...b] })) },
    { weight: 1, arbitrary: fc.record({ fill: fc.constantFrom('a', '=', '&', '%00', '[', '\u0000'), size: fc.integer({ min: 30_000, max: 6 * 1024 * 1024 }) }).map((h): Body => ({ kind: 'huge', ...h })) },
  );
}

export function bodyBytes(body: Body, csrf: string | undefined): { bytes: Buffer | undefined; type: string | undefined } {
  switch (body.kind) {
    case 'none':
      return { bytes: undefined, type: undefined };
    case 'form': {
      const encoded = encodePairs(body.pairs);
      return { bytes: Buffer.from(csrf === undefined ? encoded : `_csrf=${pct(Buffer.from(csrf))}&${encoded}`), type: 'application/x-www-form-urlencoded' };
    }
    case 'json':
      return { bytes: Buffer.from(body.text), type: 'application/json' };
    case 'deep-json':
      return { bytes: Buffer.from(body.open.repeat(body.depth) + '1' + body.close.repeat(body.depth)), type: 'application/json' };
    case 'multipart': {
      const chunks: Buffer[] = [];
      for (const p of body.parts) {
        const disposition = `form-data; name="${bytesOf(p.name).toString('latin1')}"${p.filename === undefined ? '' : `; filename="${p.filename}"`}`;
        chunks.push(Buffer.from(`--${body.boundary}\r\nContent-Disposition: ${disposition}\r\n${p.type === undefined ? '' : `Content-Type: ${p.type}\r\n`}\r\n`, 'latin1'), bytesOf(p.content), Buffer.from('\r\n'));
      }
      if (!body.truncate) chunks.push(Buffer.from(`--${body.boundary}--\r\n`, 'latin1'));
      return { bytes: Buffer.concat(chunks), type: `multipart/form-data; boundary=${body.boundary}` };
    }
    case 'bytes':
      return { bytes: Buffer.from(body.bytes), type: undefined };
    case 'huge':
      return { bytes: Buffer.alloc(body.size, body.fill), type: 'application/x-www-form-urlencoded' };
  }
}

/** Content types: the one matching the body most of the time, otherwise a wrong or broken one. */
export const contentTypeArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant<string | null>(null) },
  {
    weight: 3,
    arbitrary: fc.constantFrom<string | null>(
      '', 'application/json', 'application/x-www-form-urlencoded', 'multipart/form-data', 'multipart/form-data; boundary=',
      'multipart/form-data; boundary=xyz', 'text/plain', 'application/xml', 'application/x-www-form-urlencoded; charset=utf-16',
      'application/json; charset=bogus', 'application/json; charset=latin1', 'image/png', 'application/jwt', '*/*', ';;;', 'a/b; c',
    ),
  },
);

export const encodingArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ name: null as string | null, compress: false }) },
  { weight: 2, arbitrary: fc.record({ name: fc.constantFrom<string | null>('gzip', 'deflate', 'br', 'identity', 'gzip, gzip', 'x-garbage', 'GZIP'), compress: fc.boolean() }) },
);

export function encode(bytes: Buffer, encoding: { name: string | null; compress: boolean }): Buffer {
  if (!encoding.compress) return bytes;
  if (encoding.name === 'gzip' || encoding.name === 'GZIP') return gzipSync(bytes);
  if (encoding.name === 'deflate') return deflateSync(bytes);
  if (encoding.name === 'br') return brotliCompressSync(bytes);
  return bytes;
}

const headerText = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });

/** Headers a client can write and that must decide nothing. */
export const headersArb = fc.record({
  host: fc.constantFrom('evil.example', 'localhost', '127.0.0.1:1', '[::1]', 'a'.repeat(300), 'x y', '%00'),
  'x-forwarded-for': fc.oneof(fc.ipV4(), fc.ipV6(), headerText, fc.constant('1.1.1.1, 2.2.2.2, 3.3.3.3')),
  'x-forwarded-proto': fc.constantFrom('https', 'http', 'gopher', 'https, http', ''),
  'x-forwarded-host': fc.oneof(fc.domain(), headerText),
  accept: fc.constantFrom('application/json', 'text/html', '*/*', 'image/png', 'application/json;q=0, text/html;q=0', ';;', ''),
  'accept-language': fc.oneof(fc.constantFrom('fr-FR,fr;q=0.9', '*', 'x'.repeat(500)), headerText),
  origin: fc.constantFrom('https://evil.example', 'null', ''),
  referer: fc.oneof(fc.webUrl(), headerText),
  'x-request-id': fc.oneof(headerText, fc.constant('a'.repeat(200))),
  'user-agent': fc.oneof(headerText, fc.constant('Mozilla/5.0 '.repeat(200))),
  authorization: fc.oneof(headerText, fc.constantFrom('Bearer ', 'Bearer a.b.c', 'Basic ', 'Basic Og==', 'Basic !!!', 'DPoP x')),
}, { requiredKeys: [] });

/** The methods every route must answer below 500; any other is a method no route knows (501 allowed). */
export const STANDARD_METHODS: ReadonlySet<string> = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD']);

export const methodArb = (methods: readonly string[]) => fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...methods) },
  { weight: 1, arbitrary: fc.constantFrom(...STANDARD_METHODS) },
  // WebDAV's and caches' methods, which anyone can send (decision 0018's amendment).
  { weight: 1, arbitrary: fc.constantFrom('PROPFIND', 'MKCOL', 'LOCK', 'SEARCH', 'PURGE') },
);
