import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

import { KEY_DETECTION_REGEX } from '../keys/format.ts';

export type { Logger } from 'pino';

/**
 * Paths that may hold key material in anything logged: the data of Secrets, wherever they appear.
 * Redaction by path is the first line; scrubbing key-shaped strings from every line is the second.
 */
const REDACT_PATHS = [
  'data',
  'stringData',
  '*.data',
  '*.stringData',
  '*.*.data',
  '*.*.stringData',
  'headers.authorization',
  '*.headers.authorization',
];

export const REDACTED = '[REDACTED]';

/** Replaces anything shaped like a keyrotor key, wherever it appears in a string. */
export function scrubKeys(text: string): string {
  return text.replace(KEY_DETECTION_REGEX, REDACTED);
}

export interface LoggerOptions {
  readonly level?: LevelWithSilent;
  /** Where lines go; standard output by default. Tests pass a stream they can search. */
  readonly destination?: DestinationStream;
}

export function createLogger({ level = 'info', destination }: LoggerOptions = {}): Logger {
  return pino(
    {
      level,
      base: { component: 'keyrotor' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        // The last line of defence: a key that slipped into a message or an error never reaches the sink.
        streamWrite: scrubKeys,
      },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
