import * as client from 'openid-client';

/**
 * The relying-party half of "Continue with Google" (openid-client; OpenID Connect Core 1.0 §3.1,
 * authorization code with PKCE, state and nonce). The issuer is configurable, so tests and
 * development use a local provider; plain http is allowed only for an http issuer, which the
 * configuration refuses in production. Discovery runs once, at first use, and again after a
 * failure.
 */
export interface UpstreamClaims {
  sub: string;
  email: string | undefined;
  emailVerified: boolean;
  name: string | undefined;
  /** When the person last signed in upstream (seconds), when the upstream says. */
  authTime: number | undefined;
}

export interface UpstreamStart {
  url: string;
  state: string;
  nonce: string;
  verifier: string;
}

export function createGoogleClient(settings: { issuer: string; clientId: string; clientSecret: string; redirectUri: string }) {
  let configuration: Promise<client.Configuration> | undefined;

  function config(): Promise<client.Configuration> {
    configuration ??= client.discovery(new URL(settings.issuer), settings.clientId, settings.clientSecret, undefined, {
      ...(settings.issuer.startsWith('http:') ? { execute: [client.allowInsecureRequests] } : {}),
      timeout: 10,
    }).catch((err: unknown) => {
      configuration = undefined;
      throw err;
    });
    return configuration;
  }

  return {
    /**
     * `fresh`: this login re-authenticates someone already signed in here (prompt=login, max_age,
     * a sensitive change in settings), so the upstream's own session must not answer for it.
     * `max_age=0` asks for a new sign-in and for `auth_time` in the ID token (OIDC Core §3.1.2.1);
     * `prompt=login` is not used because Google refuses it. The caller checks `authTime`.
     */
    async start(options: { fresh?: boolean } = {}): Promise<UpstreamStart> {
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      const url = client.buildAuthorizationUrl(await config(), {
        redirect_uri: settings.redirectUri,
        scope: 'openid email profile',
        state,
        nonce,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        ...(options.fresh ? { max_age: '0' } : {}),
      });
      return { url: url.href, state, nonce, verifier };
    },

    /** Exchanges the code of `callbackUrl` and returns the verified ID token's claims. */
    async finish(callbackUrl: URL, checks: { state: string; nonce: string; verifier: string }): Promise<UpstreamClaims> {
      const configuration = await config();
      const tokens = await client.authorizationCodeGrant(configuration, callbackUrl, {
        pkceCodeVerifier: checks.verifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      });
      let claims: Record<string, unknown> & { sub: string } = tokens.claims()!;
      // Google puts the address in the ID token; a provider that keeps it for userinfo (OpenID
      // Connect Core §5.4) is asked there, for the same subject.
      if (typeof claims.email !== 'string') claims = { ...claims, ...(await client.fetchUserInfo(configuration, tokens.access_token, claims.sub)) };
      return {
        sub: claims.sub,
        email: typeof claims.email === 'string' ? claims.email : undefined,
        emailVerified: claims.email_verified === true,
        name: typeof claims.name === 'string' ? claims.name : undefined,
        authTime: typeof claims.auth_time === 'number' ? claims.auth_time : undefined,
      };
    },
  };
}

export type GoogleClient = ReturnType<typeof createGoogleClient>;
