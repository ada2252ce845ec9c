import { createHash, randomBytes } from 'node:crypto';
import type supertest from 'supertest';

/** A PKCE pair (RFC 7636 §4.1–4.2, S256). */
export function pkcePair() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The path of an authorization request with PKCE for `client`. */
export function authorizationPath(client: { clientId: string; redirectUri: string }, params: Record<string, string> = {}) {
  const { challenge } = pkcePair();
  const query = new URLSearchParams({
    client_id: client.clientId,
    response_type: 'code',
    scope: 'openid email',
    redirect_uri: client.redirectUri,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'state-1',
    ...params,
  });
  return `/auth?${query}`;
}

/** Starts an authorization in `agent` and returns the interaction's uid (the login page's address). */
export async function startInteraction(agent: ReturnType<typeof supertest.agent>, client: { clientId: string; redirectUri: string }, params: Record<string, string> = {}): Promise<string> {
  const res = await agent.get(authorizationPath(client, params));
  if (res.status !== 303) throw new Error(`authorization did not redirect: ${res.status} ${res.text.slice(0, 200)}`);
  const uid = /\/interaction\/([^/?#]+)/.exec(res.headers.location ?? '')?.[1];
  if (!uid) throw new Error(`authorization did not start an interaction: ${res.headers.location}`);
  return uid;
}
