/**
 * The one error family of the application (convention 2). `code` is stable and dotted
 * (`login.invalid_credentials`); `status` is the HTTP status; `expose` says whether the
 * message may be shown as is. Text for people comes from `src/http/messages.ts`, keyed by code.
 */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly expose: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, status = 400, options: { message?: string; expose?: boolean; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(options.message ?? code, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = status;
    this.expose = options.expose ?? status < 500;
    this.details = options.details;
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

/**
 * The Retry-After of a 503 (RFC 9110 §10.2.3): an outage of the data store, or the password
 * hashing full. Short: both pass in seconds, and a person waiting longer gives up.
 */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;
