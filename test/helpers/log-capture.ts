import { createLogger, type Logger } from '../../src/shared/logger.ts';

export interface CapturedLogs {
  logger: Logger;
  /** Every line written so far, as pino wrote it (JSON text). */
  readonly lines: string[];
  /** The parsed lines at `level` or above (pino's numbers: 40 warn, 50 error). */
  atLeast(level: number): Array<Record<string, unknown>>;
  clear(): void;
}

/** A real pino logger of the application's kind, writing into memory instead of stdout. */
export function captureLogs(level = 'debug'): CapturedLogs {
  const lines: string[] = [];
  const logger = createLogger(level, { write: (line: string) => lines.push(line) });
  return {
    logger,
    lines,
    atLeast: (min) => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => (l.level as number) >= min),
    clear: () => void lines.splice(0),
  };
}
