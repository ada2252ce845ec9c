import { sha256 } from '../../shared/crypto.ts';
import type { Clock } from '../../shared/clock.ts';
import type { SamlAssertionSeenQueries } from '../../persistence/queries/saml-assertions-seen.ts';
import type { SeenAssertions } from './service-provider.ts';

/**
 * The one-time-use store of SAML assertion ids, in the database so that every instance sees an
 * id used on another (migration 0021, decision 0036). The key is a hash of the connector and the
 * assertion id; the row lives while the assertion could be accepted, then the sweeper takes it.
 */
export function createSeenAssertions(deps: { queries: SamlAssertionSeenQueries; clock: Clock }): SeenAssertions & { sweep(): Promise<number> } {
  return {
    remember(connectorId, assertionId, notOnOrAfter) {
      return deps.queries.remember(sha256(`${connectorId}\n${assertionId}`), connectorId, notOnOrAfter, new Date(deps.clock.now()));
    },

    /** Deletes expired ids in batches of 500 (at most 20 per call); returns how many went. */
    async sweep(): Promise<number> {
      let removed = 0;
      for (let batch = 0; batch < 20; batch += 1) {
        const n = await deps.queries.sweepExpired(new Date(deps.clock.now()), 500);
        removed += n;
        if (n < 500) break;
      }
      return removed;
    },
  };
}
