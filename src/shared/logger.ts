import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Anything that could carry a credential is redacted by path, and request
 * logs carry the path without its query (an id_token_hint or a code can travel there).
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'lanyard' },
      redact: {
        paths: [
          'password', '*.password', 'secret', '*.secret', 'clientSecret', '*.clientSecret', 'client_secret', '*.client_secret',
          'token', '*.token', 'authorization', '*.authorization', 'cookie', '*.cookie', 'headers.cookie', 'headers.authorization',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
