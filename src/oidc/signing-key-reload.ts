import type Provider from 'oidc-provider';
import type { JWK } from 'jose';
// @ts-expect-error: oidc-provider ships no types for its internals (decision 0046 says why this one is used).
import initializeKeystoreUntyped from 'oidc-provider/lib/helpers/initialize_keystore.js';
import type { Logger } from '../shared/logger.ts';
import type { SigningKeyService } from './signing-keys.ts';

/**
 * Keeps every instance's signing keys in step with the `signing_keys` table, without a restart
 * (docs/decisions/0046-signing-keys-follow-the-database.md).
 *
 * oidc-provider takes its JWKS once, in its constructor, and has no public way to change it. A key
 * rotated through one instance (or the CLI) would otherwise be published and used by the others
 * only after their restart. So every `intervalSeconds` this reads the key set the way start-up
 * does (`loadJwks`: the key that signs now first per algorithm, then the published ones) and,
 * when it differs from what the engine holds — a key added, a key that became active, a key
 * unpublished — hands it to the engine's own keystore initializer, the same function its
 * constructor calls. The engine reads its keystore on every signature and on every /jwks request,
 * so the next token is signed with the new set.
 *
 * Bound: a rotation is published by every instance within `intervalSeconds` (plus one database
 * read), and a key starts signing everywhere within `intervalSeconds` of its activation time —
 * well inside KEY_ACTIVATION_DELAY_SECONDS, which is why a new key is published before it signs.
 */
const initializeKeystore = initializeKeystoreUntyped as (this: Provider, jwks: { keys: JWK[] }) => void;

/** The identity of a key set as the engine uses it: kids in signing order. */
const fingerprint = (jwks: { keys: JWK[] }) => jwks.keys.map((k) => `${k.alg}:${k.kid}`).join(',');

export interface SigningKeyReload {
  /** Reads the key set now; true when the engine was given a new one. */
  check(): Promise<boolean>;
  start(): void;
  stop(): void;
}

export function createSigningKeyReload(deps: {
  provider: Provider;
  signingKeys: SigningKeyService;
  logger: Logger;
  /** The JWKS the engine was constructed with. */
  initial: { keys: JWK[] };
  /** 0: never (the key set changes only at a restart). */
  intervalSeconds: number;
}): SigningKeyReload {
  const { provider, signingKeys, logger, intervalSeconds } = deps;
  let current = fingerprint(deps.initial);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<boolean> | undefined;
  let failing = false;

  async function reload(): Promise<boolean> {
    const jwks = await signingKeys.loadJwks();
    const next = fingerprint(jwks);
    if (next === current) return false;
    initializeKeystore.call(provider, jwks);
    current = next;
    logger.info({ kids: jwks.keys.map((k) => k.kid) }, 'signing keys reloaded');
    return true;
  }

  const check = () => {
    running ??= reload().finally(() => { running = undefined; });
    return running;
  };

  return {
    check,
    start() {
      if (intervalSeconds <= 0 || timer) return;
      timer = setInterval(() => {
        check().then(() => {
          if (failing) logger.info('signing keys readable again');
          failing = false;
        }, (err: unknown) => {
          // The database may be away (a failover): the keys in use stay; one line per outage.
          if (!failing) logger.warn({ err: { message: (err as Error).message } }, 'signing keys could not be reloaded; keeping the current set');
          failing = true;
        });
      }, intervalSeconds * 1000);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
