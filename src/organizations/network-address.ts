import { BlockList, isIP } from 'node:net';

/**
 * Addresses a server-side request must not reach on a name an outsider controls (SSRF): loopback,
 * private, link-local (cloud metadata at 169.254.169.254), shared, multicast, reserved and
 * documentation ranges — IANA's special-purpose registries (RFC 6890) for IPv4 and IPv6, and
 * IPv4 reached through IPv6 (mapped, NAT64). The same rule the engine applies to back-channel
 * logout (which ALLOW_PRIVATE_NETWORK_CALLS turns off); for the domain check,
 * ALLOW_PRIVATE_NETWORK_UPSTREAMS does, which production refuses.
 */
const special = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) special.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 23],
  ['2001:db8::', 32], ['2002::', 16], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) special.addSubnet(net, prefix, 'ipv6');

export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  // IPv4-mapped IPv6 (::ffff:a.b.c.d) is its IPv4 address. (A ::ffff:0:0/96 rule in the list
  // would match every IPv4 address too: BlockList checks IPv4 against mapped IPv6 rules.)
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return isPublicAddress(mapped);
  if (family === 6 && /^::ffff:/i.test(address)) return false;
  return !special.check(address, family === 4 ? 'ipv4' : 'ipv6');
}
