import { sha256 } from '../shared/crypto.ts';
import type { Clock } from '../shared/clock.ts';
import type { Logger } from '../shared/logger.ts';
import type { LoginFlowQueries, LoginFlowRow } from '../persistence/queries/login-flows.ts';

/**
 * The login flow record (docs/flows/login.md, decision 0026): what one login interaction has
 * proven so far and where it stands, on the server, keyed by the interaction. It replaces the
 * signed `lanyard.login_pending` cookie and the sealed Trello cookies.
 *
 * It is deliberately not the engine's interaction result: oidc-provider completes whatever
 * result an interaction holds when its resume endpoint (`/auth/<uid>`) is visited, so a partial
 * login written there could skip the second step (decision 0012). It is reachable only through
 * the interaction, which the engine binds to the browser's signed interaction cookie: another
 * browser, or another interaction of the same browser, reaches another record or none.
 */
export type LoginStep =
  /** A first factor passed; the second one (authenticator or recovery code) is asked. */
  | 'second_factor'
  /** A first factor passed; two-step verification must be set up before going on. */
  | 'enrol'
  /** Set up and confirmed; the recovery codes are on screen, "continue" finishes. */
  | 'enrolled'
  /** The account's password passed; linking the Trello member with its address is offered. */
  | 'trello_offer'
  /** A Trello member's password passed: its review, "prove that account", or a new address by code. */
  | 'trello_member'
  /** Every factor passed, but the password is older than the account's policy allows: a new one first (decision 0039). */
  | 'change_password';

/** The Trello member proven by its Trello password in this login. */
export interface TrelloMemberProof {
  memberId: string;
  /** argon2id of the Trello password, computed once at the password step (it becomes the account's). */
  passwordHash: string;
  /** The account the Trello password was typed at (its address), when it has one. */
  accountEmail?: string;
  /** A new address being proven ("I can't use these addresses"), with its code's keyed hash. */
  newEmail?: string;
  codeHash?: string;
  /** The code for `newEmail` was right: its account may be proven (/trello/prove). */
  newEmailProven?: boolean;
}

/** Both sides proven: the member is linked to the account when the login finishes (decision 0019). */
export interface DeferredLink { memberId: string; accountId: string; email: string }

export interface TrelloFlowState {
  member?: TrelloMemberProof;
  link?: DeferredLink;
  /** The link offer was answered (linked or "Not now"): not offered again in this login. */
  offerAnswered?: boolean;
}

export interface LoginFlow {
  uid: string;
  step: LoginStep;
  /** The account proven so far (by a first factor), if any. */
  accountId: string | undefined;
  /** RFC 8176 methods done so far. */
  amr: string[];
  /** Failed tries at the current step (they start at zero on each new step). */
  attempts: number;
  trello: TrelloFlowState;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

export interface LoginFlowState {
  step: LoginStep;
  accountId?: string | undefined;
  amr?: string[];
  trello?: TrelloFlowState;
}

/**
 * A step waits at most this long for the person (the cookies this record replaces lived ten and
 * fifteen minutes), and never longer than the interaction itself.
 */
export const STEP_SECONDS = 900;

export function createLoginFlows(deps: { queries: LoginFlowQueries; clock: Clock; logger?: Logger }) {
  const { queries, clock } = deps;
  const now = () => new Date(clock.now());
  const key = (uid: string) => sha256(`login-flow:${uid}`);

  const fromRow = (uid: string, row: LoginFlowRow): LoginFlow => ({
    uid,
    step: row.step as LoginStep,
    accountId: row.account_id ?? undefined,
    amr: row.amr,
    attempts: row.attempts,
    trello: (row.trello ?? {}) as TrelloFlowState,
    expiresAt: row.expires_at.getTime(),
  });

  return {
    /** The record's key for an interaction uid, and a row read elsewhere (the password step's one statement) as a flow. */
    keyOf: key,
    fromRow,

    /** The live flow of interaction `uid`, if it has one. */
    async find(uid: string): Promise<LoginFlow | undefined> {
      const row = await queries.find(key(uid), now());
      return row ? fromRow(uid, row) : undefined;
    },

    /**
     * Saves the flow's state; it lives until the interaction expires (`expiresIn` seconds from
     * now) or `STEP_SECONDS` from now, whichever comes first.
     */
    async save(it: { uid: string; expiresIn: number }, state: LoginFlowState): Promise<void> {
      const at = clock.now();
      const expiresAt = new Date(at + Math.min(it.expiresIn, STEP_SECONDS) * 1000);
      await queries.save({
        uidHash: key(it.uid),
        step: state.step,
        accountId: state.accountId ?? null,
        amr: state.amr ?? [],
        trello: state.trello && Object.keys(state.trello).length ? { ...state.trello } : null,
        expiresAt,
        now: new Date(at),
      });
    },

    /** Counts a failed try at the current step; the number of failed tries now. */
    failed: (uid: string) => queries.countAttempt(key(uid), now()),

    /** The flow is over (finished, cancelled, or started again). */
    end: (uid: string) => queries.remove(key(uid)),

    /** Deletes expired flows in batches of 500 (at most 20 per call); returns how many went. */
    async sweep(): Promise<number> {
      let removed = 0;
      for (let batch = 0; batch < 20; batch += 1) {
        const n = await queries.sweepExpired(now(), 500);
        removed += n;
        if (n < 500) break;
      }
      if (removed) deps.logger?.debug({ removed }, 'expired login flows swept');
      return removed;
    },
  };
}

export type LoginFlows = ReturnType<typeof createLoginFlows>;
