import { createOidcClient, type UpstreamChecks, type UpstreamStart } from './oidc-client.ts';

/**
 * The relying-party half of "Continue with Google": the generic OpenID Connect client
 * (oidc-client.ts) with Google's scope. `max_age=0` only for a re-authentication: Google refuses
 * `prompt=login`.
 */
export interface GoogleClaims {
  sub: string;
  email: string | undefined;
  /** Only Google's explicit `true` counts. */
  emailVerified: boolean;
  name: string | undefined;
  /** When the person last signed in upstream (seconds), when the upstream says. */
  authTime: number | undefined;
}

export type { UpstreamStart };

export function createGoogleClient(settings: { issuer: string; clientId: string; clientSecret: string; redirectUri: string }) {
  const upstream = createOidcClient({ ...settings, scope: 'openid email profile' });
  return {
    start: (options: { maxAge?: number | undefined } = {}) => upstream.start(options),
    async finish(callbackUrl: URL, checks: UpstreamChecks): Promise<GoogleClaims> {
      const claims = await upstream.finish(callbackUrl, checks);
      return { sub: claims.sub, email: claims.email, emailVerified: claims.emailVerified === true, name: claims.name, authTime: claims.authTime };
    },
  };
}

export type GoogleClient = ReturnType<typeof createGoogleClient>;
