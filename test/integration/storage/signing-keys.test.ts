import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import * as jose from 'jose';
import { testDatabase, resetDatabase } from '../../helpers/db.ts';
import { createSigningKeyQueries } from '../../../src/persistence/queries/signing-keys.ts';
import { createSigningKeyService } from '../../../src/oidc/signing-keys.ts';
import { createSecretBox } from '../../../src/shared/crypto.ts';
import type { Clock } from '../../../src/shared/clock.ts';

describe('signing keys', () => {
  let now = Date.UTC(2026, 5, 1);
  const clock: Clock = { now: () => now };
  const box = createSecretBox(randomBytes(32));
  let service: ReturnType<typeof createSigningKeyService>;

  beforeEach(async () => {
    await resetDatabase();
    now = Date.UTC(2026, 5, 1);
    service = createSigningKeyService({ keys: createSigningKeyQueries(await testDatabase()), box, clock });
  });

  it('creates one ES256 and one RS256 key on first start, and none on the next', async () => {
    expect(await service.ensure()).to.have.length(2);
    expect(await service.ensure()).to.have.length(0);
    const { keys } = await service.loadJwks();
    expect(keys.map((k) => k.alg)).to.deep.equal(['ES256', 'RS256']);
  });

  it('keeps private parts sealed in the database', async () => {
    await service.ensure();
    const db = await testDatabase();
    const { rows } = await db.query<{ public_jwk: Record<string, unknown>; private_jwk_sealed: string }>('SELECT public_jwk, private_jwk_sealed FROM signing_keys');
    for (const row of rows) {
      expect(row.public_jwk).not.to.have.any.keys('d', 'p', 'q');
      expect(row.private_jwk_sealed).to.match(/^v2\./);
      expect(row.private_jwk_sealed).not.to.contain('"d"');
    }
  });

  it('rotates: the new key is published at once, signs after the delay, and the old one is unpublished later', async () => {
    await service.ensure();
    const before = (await service.loadJwks()).keys;
    const [newEs] = await service.rotate(3600, 600);

    let keys = (await service.loadJwks()).keys;
    expect(keys).to.have.length(4);
    expect(keys[0]!.kid, 'the old ES256 key still signs during the delay').to.equal(before[0]!.kid);
    expect(keys.map((k) => k.kid)).to.include(newEs);

    now += 3600_000 + 1;
    keys = (await service.loadJwks()).keys;
    expect(keys[0]!.kid, 'the new key signs after the delay').to.equal(newEs);
    expect(keys.map((k) => k.kid), 'the old key is still published for tokens it signed').to.include(before[0]!.kid);

    now += 600_000;
    keys = (await service.loadJwks()).keys;
    expect(keys.map((k) => k.kid)).not.to.include(before[0]!.kid);
    expect(keys).to.have.length(2);
  });

  it('produces keys that really sign and verify', async () => {
    await service.ensure();
    const [es] = (await service.loadJwks()).keys;
    const key = await jose.importJWK(es!, 'ES256');
    const jwt = await new jose.SignJWT({ a: 1 }).setProtectedHeader({ alg: 'ES256', kid: es!.kid! }).sign(key);
    const { d: _d, ...pub } = es!;
    const { payload } = await jose.jwtVerify(jwt, await jose.importJWK(pub, 'ES256'));
    expect(payload.a).to.equal(1);
  });
});
