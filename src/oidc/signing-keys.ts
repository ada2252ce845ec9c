import { generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { Clock } from '../shared/clock.ts';
import type { SecretBox } from '../shared/crypto.ts';
import type { SigningKeyQueries } from '../persistence/queries/signing-keys.ts';

/**
 * Signing keys live in the database so every instance publishes and signs with the same set.
 * Private parts are sealed with SECRET_KEY. ES256 signs by default (about 4× cheaper than RS256);
 * RS256 stays available for relying parties that only accept it (docs/decisions/0003-signing-keys.md).
 */
export const SIGNING_ALGORITHMS = ['ES256', 'RS256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

function generate(alg: SigningAlgorithm): JWK {
  const pair = alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return pair.privateKey.export({ format: 'jwk' }) as JWK;
}

function publicPart(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
  return pub;
}

/** Associated data of a private key (also used by `secrets reseal`). */
export const sealContext = (kid: string) => `signing_keys:${kid}`;

export function createSigningKeyService(deps: { keys: SigningKeyQueries; box: SecretBox; clock: Clock }) {
  const { keys, box, clock } = deps;

  async function add(alg: SigningAlgorithm, activatesAt: Date): Promise<string> {
    const jwk = generate(alg);
    const kid = await calculateJwkThumbprint(jwk);
    const full: JWK = { ...jwk, kid, alg, use: 'sig' };
    await keys.insert({
      kid,
      alg,
      public_jwk: publicPart(full) as Record<string, unknown>,
      private_jwk_sealed: box.seal(JSON.stringify(full), sealContext(kid)),
      activates_at: activatesAt,
    });
    return kid;
  }

  return {
    /** Creates the first key of each algorithm when there is none (first start). */
    async ensure(): Promise<string[]> {
      const published = await keys.listPublished(new Date(clock.now()));
      const created: string[] = [];
      for (const alg of SIGNING_ALGORITHMS) {
        if (!published.some((k) => k.alg === alg)) created.push(await add(alg, new Date(clock.now())));
      }
      return created;
    },

    /**
     * Adds a new key per algorithm that signs from `now + activationDelay`. The previous keys
     * stay published until the new one has signed for `maxSignedLifetime` seconds, so a token
     * signed by an old key verifies for as long as it is valid.
     */
    async rotate(activationDelaySeconds: number, maxSignedLifetimeSeconds: number): Promise<string[]> {
      const activatesAt = new Date(clock.now() + activationDelaySeconds * 1000);
      const unpublishAt = new Date(activatesAt.getTime() + maxSignedLifetimeSeconds * 1000);
      const created: string[] = [];
      for (const alg of SIGNING_ALGORITHMS) {
        const kid = await add(alg, activatesAt);
        await keys.scheduleUnpublish(alg, kid, unpublishAt);
        created.push(kid);
      }
      return created;
    },

    /**
     * The JWKS for oidc-provider, private parts included. Per algorithm the key that signs now
     * comes first (oidc-provider signs with the first key matching the algorithm); keys not yet
     * active and keys being retired follow, published but not used for signing.
     */
    async loadJwks(): Promise<{ keys: JWK[] }> {
      const now = clock.now();
      const rows = await keys.listPublished(new Date(now));
      const ordered = SIGNING_ALGORITHMS.flatMap((alg) => {
        const ofAlg = rows.filter((r) => r.alg === alg);
        const active = ofAlg.find((r) => r.activates_at.getTime() <= now);
        return active ? [active, ...ofAlg.filter((r) => r !== active)] : ofAlg;
      });
      return { keys: ordered.map((row) => JSON.parse(box.open(row.private_jwk_sealed, sealContext(row.kid))) as JWK) };
    },

    list: () => keys.listPublished(new Date(clock.now())),
  };
}

export type SigningKeyService = ReturnType<typeof createSigningKeyService>;
