import type { Queryable } from '../db.ts';
import { loginAccountSql, type AccountRow } from './accounts.ts';
import { loginFlowSql, type LoginFlowRow } from './login-flows.ts';
import { domainHolderSql } from './organization-domains.ts';
import { reservationCtes, type ThrottleState } from './throttles.ts';

/** The throttle's reservation as `reserve` takes it (src/identity/throttle.ts, `Reservation`). */
export interface ReservationInput {
  key: string;
  free: number;
  /** The client address's key; absent for an attempt from a known device. */
  unlessAddress?: string | undefined;
  token: string;
  now: Date;
  since: Date;
  baseSeconds: number;
  maxSeconds: number;
}

export interface PasswordStepRow {
  /**
   * The subject's reservation, as `ThrottleQueries.reserve` answers it; undefined when it was
   * not attempted because an organization holds the address's domain (its policy is asked first).
   */
  reserved: (ThrottleState & { counted: boolean; address_blocked_until: Date | null }) | undefined;
  /** The organization holding the address's domain, with its default policy's rules (JSON text). */
  held: { organization_id: string; name: string; rules: string | null } | undefined;
  /** The account at the address, as `findForLogin` reads it. */
  account: AccountRow | undefined;
  /** The interaction's flow record, as `LoginFlowQueries.find` reads it. */
  flow: LoginFlowRow | undefined;
}

/**
 * The password step's reads and its throttle reservation in one statement (issue 14, decision
 * 0050): what four statements did one after the other — the domain's holder (does its policy send
 * this address to the company's identity provider?), the subject's reservation (committed before
 * the password is checked, so parallel guesses are counted), the account, the flow record.
 *
 * The reservation is made only when no organization holds the domain: on a held domain the
 * policy may send the address elsewhere before any attempt counts, so the caller reserves on its
 * own once the decision point has answered (one more statement on that path only). Each part is
 * the SQL its table's queries use alone (`domainHolderSql`, `reservationCtes`, `loginAccountSql`,
 * `loginFlowSql`), so the answers are the same as theirs.
 */
export function createPasswordStepQueries(db: Queryable) {
  return {
    async lookup(input: { reservation: ReservationInput; email: string; domain: string; flowUidHash: string }): Promise<PasswordStepRow> {
      const r = input.reservation;
      const { rows } = await db.query<Record<string, unknown>>(
        `WITH held AS (${domainHolderSql('$9')}), ${reservationCtes('EXISTS (SELECT 1 FROM held)')}
         SELECT (SELECT blocked_until FROM address) AS throttle_address_blocked_until, r.key AS throttle_key, r.failures AS throttle_failures,
                r.blocked_until AS throttle_blocked_until, r.counted AS throttle_counted,
                h.organization_id AS held_organization_id, h.name AS held_name, h.rules AS held_rules,
                (SELECT row_to_json(f) FROM (${loginFlowSql('$11', '$3')}) f)::text AS login_flow,
                a.*
         FROM (SELECT 1) AS one
           LEFT JOIN reserved r ON true
           LEFT JOIN held h ON true
           LEFT JOIN LATERAL (${loginAccountSql('$10')}) a ON true`,
        [r.key, r.free, r.now, r.since, r.baseSeconds, r.maxSeconds, r.token, r.unlessAddress ?? null, input.domain, input.email, input.flowUidHash],
      );
      const row = rows[0]!;
      const held = row.held_organization_id != null
        ? { organization_id: row.held_organization_id as string, name: row.held_name as string, rules: (row.held_rules as string | null) ?? null }
        : undefined;
      const reserved = held
        ? undefined
        : {
            key: (row.throttle_key as string | null) ?? r.key,
            failures: (row.throttle_failures as number | null) ?? 0,
            blocked_until: (row.throttle_blocked_until as Date | null) ?? null,
            counted: row.throttle_counted === true,
            address_blocked_until: (row.throttle_address_blocked_until as Date | null) ?? null,
          };
      const flowJson = row.login_flow as string | null;
      const flowRaw = flowJson ? (JSON.parse(flowJson) as Omit<LoginFlowRow, 'expires_at'> & { expires_at: string }) : undefined;
      const flow = flowRaw ? { ...flowRaw, expires_at: new Date(flowRaw.expires_at) } : undefined;
      const account = row.id != null ? accountOf(row) : undefined;
      return { reserved, held, account, flow };
    },
  };
}

/** The account's columns of the row, without the parts that belong to the throttle, the domain or the flow. */
function accountOf(row: Record<string, unknown>): AccountRow {
  const account: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(row)) {
    if (!name.startsWith('throttle_') && !name.startsWith('held_') && name !== 'login_flow') account[name] = value;
  }
  return account as unknown as AccountRow;
}

export type PasswordStepQueries = ReturnType<typeof createPasswordStepQueries>;
