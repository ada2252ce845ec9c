import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { SpKeyPair } from './config.ts';

/**
 * A new key pair for the service provider side of one connector: RSA 2048 (what every IdP can
 * encrypt to — XML Encryption's key transport is RSA-OAEP — and verify), with a self-signed
 * X.509 certificate around the public key.
 *
 * SAML metadata trusts the exact certificate it publishes (SAML 2.0 Metadata §2.4.1.1): no
 * chain, no CA, nothing but the key matters. So the certificate is built here with node's own
 * crypto and a few lines of DER (RFC 5280 §4.1) instead of a dependency: it is a container for
 * the key, checked in test/unit/federation/saml-sp-keys.test.ts by node's X509Certificate.
 */
export function generateSpKeys(now: Date, options: { years?: number; commonName?: string } = {}): SpKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  // Not before a minute ago: an IdP whose clock is a little behind still accepts it.
  const notBefore = new Date(now.getTime() - 60_000);
  const notAfter = new Date(now.getTime());
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + (options.years ?? 10));
  const name = dn(options.commonName ?? 'Lanyard SAML service provider');
  const serial = randomBytes(16);
  serial[0]! &= 0x7f; // a positive INTEGER (RFC 5280 §4.1.2.2)
  const tbs = seq(
    ctx(0, int(Buffer.from([2]))), // v3
    int(serial),
    SHA256_WITH_RSA,
    name,
    seq(time(notBefore), time(notAfter)),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    ctx(3, seq(
      // basicConstraints: not a CA (critical); keyUsage: signatures and key encipherment.
      seq(oid('2.5.29.19'), bool(true), octets(seq())),
      seq(oid('2.5.29.15'), bool(true), octets(bits(Buffer.from([0xa0]), 5))),
    )),
  );
  const signature = sign('sha256', tbs, privateKey);
  const der = seq(tbs, SHA256_WITH_RSA, bits(signature));
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    certificatePem: pem('CERTIFICATE', der),
    createdAt: now.toISOString(),
  };
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

// --- DER (ITU-T X.690 §8, §10) -------------------------------------------------------------

function tlv(tag: number, content: Buffer): Buffer {
  const length = content.length;
  let header: Buffer;
  if (length < 0x80) header = Buffer.from([tag, length]);
  else {
    const bytes: number[] = [];
    for (let n = length; n > 0; n >>= 8) bytes.unshift(n & 0xff);
    header = Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([header, content]);
}

const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const ctx = (n: number, content: Buffer) => tlv(0xa0 | n, content);
const octets = (content: Buffer) => tlv(0x04, content);
const bool = (value: boolean) => tlv(0x01, Buffer.from([value ? 0xff : 0]));
const nul = () => tlv(0x05, Buffer.alloc(0));
const utf8 = (value: string) => tlv(0x0c, Buffer.from(value, 'utf8'));

function int(value: Buffer): Buffer {
  let start = 0;
  while (start < value.length - 1 && value[start] === 0 && (value[start + 1]! & 0x80) === 0) start++;
  const trimmed = value.subarray(start);
  return tlv(0x02, (trimmed[0]! & 0x80) ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function bits(content: Buffer, unused = 0): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([unused]), content]));
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes = [40 * parts[0]! + parts[1]!];
  for (const part of parts.slice(2)) {
    const chunk: number[] = [part & 0x7f];
    for (let n = part >> 7; n > 0; n >>= 7) chunk.unshift(0x80 | (n & 0x7f));
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5). */
function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'; // YYYYMMDDHHMMSSZ
  return date.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2), 'ascii')) : tlv(0x18, Buffer.from(iso, 'ascii'));
}

const dn = (commonName: string) => seq(set(seq(oid('2.5.4.3'), utf8(commonName))));

const SHA256_WITH_RSA = seq(oid('1.2.840.113549.1.1.11'), nul());
