import { errors } from 'oidc-provider';
import { DatabaseUnavailableError } from '../persistence/db.ts';

/**
 * How the engine reports that the database did not answer. oidc-provider renders any error it
 * does not recognise as `server_error` with status 500; an error of its own family that is
 * exposed is rendered as is (lib/helpers/err_out.js). So a DatabaseUnavailableError met inside
 * the engine becomes `temporarily_unavailable` (RFC 6749 §4.1.2.1) with status 503: redirected
 * to the client at /auth when the client and its redirect_uri are known, a JSON body at /token,
 * /me and the other endpoints, our error page (renderError) otherwise.
 */
export class TemporarilyUnavailable extends errors.OIDCProviderError {
  constructor(cause: DatabaseUnavailableError) {
    super(503, 'temporarily_unavailable', { cause });
    // The code and description are safe to show; the cause goes to the log only (error_detail).
    this.expose = true;
    this.error_description = 'the service is temporarily unavailable, retry later';
  }
}

export function asProtocolError(err: unknown): unknown {
  return err instanceof DatabaseUnavailableError ? new TemporarilyUnavailable(err) : err;
}

/** Runs `work`, turning a database outage into the protocol's error. */
export async function protocolErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw asProtocolError(err);
  }
}

const rethrow = (err: unknown): never => {
  throw asProtocolError(err);
};

/**
 * The same for every method of a storage adapter (each returns a promise). One wrapper per
 * method, made once and reused (the engine calls these several times per request), and no
 * extra async layer: the method's own promise gets the conversion.
 */
export function withProtocolErrors<T extends object>(adapter: T): T {
  const wrappers = new Map<PropertyKey, { of: unknown; call: (...args: unknown[]) => Promise<unknown> }>();
  return new Proxy(adapter, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      const known = wrappers.get(property);
      if (known?.of === value) return known.call;
      const call = (...args: unknown[]): Promise<unknown> => {
        try {
          return Promise.resolve((value as (...a: unknown[]) => unknown).apply(target, args)).catch(rethrow);
        } catch (err) {
          return Promise.reject(asProtocolError(err));
        }
      };
      wrappers.set(property, { of: value, call });
      return call;
    },
  });
}
