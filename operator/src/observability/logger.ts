import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

/**
 * Paths that may hold key material in anything logged: the data of Secrets, wherever they appear (up
 * to five levels down, e.g. a list's `items[*].data` inside a logged object). Redaction by path is the
 * first line; scrubbing key-shaped strings, raw or encoded, from every line is the second.
 */
const REDACT_PATHS = [
  'data',
  'stringData',
  '*.data',
  '*.stringData',
  '*.*.data',
  '*.*.stringData',
  '*.*.*.data',
  '*.*.*.stringData',
  '*.*.*.*.data',
  '*.*.*.*.stringData',
  'headers.authorization',
  '*.headers.authorization',
];

export const REDACTED = '[REDACTED]';

/**
 * A keyrotor key (operator/src/keys/format.ts: <prefix>_<env tag>_<base62 body and checksum>) anywhere
 * in a string. Unlike KEY_DETECTION_REGEX (for scanners, on word boundaries) this one has no boundary:
 * `API_KEY_<key>`, `<key>_old`, `1<key>` and `api_key%3D<key>` are caught too. Over-matching a
 * neighbouring letter or two is fine here.
 */
const RAW_KEY = /[a-z][a-z0-9]{1,11}_(?:live|stg|test|dev)_[0-9A-Za-z]{28,}/g;
const HAS_RAW_KEY = new RegExp(RAW_KEY.source);
/** What every key holds: a cheap test before the costlier RAW_KEY, which may start at any letter. */
const ENVIRONMENT_TAG = /_(?:live|stg|test|dev)_/;
/**
 * A run of base64 (standard or url-safe) or hex long enough to hold a whole key once decoded: the
 * shortest key (2-letter prefix, 3-letter tag, 128 bits) has 35 characters, 47 in unpadded base64 and
 * 70 in hex.
 */
const MIN_BASE64 = 47;
const MIN_HEX = 70;
/** The characters of base64 (both alphabets) and hex, by char code: tokens are found by a plain loop, several times faster than a regular expression on these lines. */
const TOKEN_CHARS = new Uint8Array(128);
for (const character of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-')
  TOKEN_CHARS[character.charCodeAt(0)] = 1;
const PAD = '='.charCodeAt(0);

/** Start and end (past up to two `=`) of each run of base64 or hex characters long enough to hold a key. */
function longTokens(text: string): number[] {
  const bounds: number[] = [];
  let start = -1;
  for (let i = 0; i <= text.length; i += 1) {
    const code = i < text.length ? text.charCodeAt(i) : 0;
    if (code < 128 && TOKEN_CHARS[code] === 1) {
      if (start < 0) start = i;
    } else if (start >= 0) {
      if (i - start >= MIN_BASE64) {
        let end = i;
        while (end < text.length && end - i < 2 && text.charCodeAt(end) === PAD) end += 1;
        bounds.push(start, end);
      }
      start = -1;
    }
  }
  return bounds;
}
const HEX_RUN = /[0-9A-Fa-f]{70,}/g;
/** Encodings inside encodings (base64 of a JSON that holds a base64 Secret value) are looked into this deep. */
const MAX_DEPTH = 2;

function holdsKey(text: string, depth: number): boolean {
  return (
    (ENVIRONMENT_TAG.test(text) && HAS_RAW_KEY.test(text)) ||
    (depth < MAX_DEPTH && hasEncodedKey(text, depth + 1))
  );
}

/** Whether `token` decodes (as base64 or hex, from one of its first characters) to text holding a key. */
function decodesToKey(token: string, depth: number): boolean {
  // Hex within the token (`0x<hex>`, `API_KEY_<hex>`), from an even or an odd character.
  if (token.length >= MIN_HEX) {
    for (const [run] of token.matchAll(HEX_RUN))
      for (let offset = 0; offset < 2; offset += 1)
        if (holdsKey(Buffer.from(run.slice(offset), 'hex').toString('latin1'), depth)) return true;
  }
  // Node's base64 decoder takes both alphabets, with or without padding. Starting at each of the first
  // four characters also finds a token that something (a name, an escaped newline's `n`) runs into.
  const body = token.replace(/=+$/, '');
  for (let offset = 0; offset < 4 && body.length - offset >= MIN_BASE64; offset += 1)
    if (holdsKey(Buffer.from(body.slice(offset), 'base64').toString('latin1'), depth)) return true;
  return false;
}

function hasEncodedKey(text: string, depth: number): boolean {
  const bounds = longTokens(text);
  for (let i = 0; i < bounds.length; i += 2)
    if (decodesToKey(text.slice(bounds[i], bounds[i + 1]), depth)) return true;
  return false;
}

/**
 * Replaces anything that is or holds a keyrotor key, wherever it appears in a string: the key itself
 * (whatever its neighbours), and any base64, base64url or hex token that decodes to text holding one
 * (a Secret's data value, the base64 of a JSON document with a key in it). The whole token is replaced.
 * Runs on every log line: a line with no long token costs two regular-expression scans.
 */
export function scrubKeys(text: string): string {
  const raw = ENVIRONMENT_TAG.test(text) ? text.replace(RAW_KEY, REDACTED) : text;
  const bounds = longTokens(raw);
  if (bounds.length === 0) return raw;
  let scrubbed = '';
  let last = 0;
  for (let i = 0; i < bounds.length; i += 2) {
    const start = bounds[i] ?? 0;
    const end = bounds[i + 1] ?? 0;
    if (!decodesToKey(raw.slice(start, end), 1)) continue;
    scrubbed += `${raw.slice(last, start)}${REDACTED}`;
    last = end;
  }
  return last === 0 ? raw : scrubbed + raw.slice(last);
}

/** `text` scrubbed and cut to at most `max` characters, with a trailing "…" when cut. */
export function scrubbedExcerpt(text: string, max: number): string {
  const scrubbed = scrubKeys(text);
  return scrubbed.length <= max ? scrubbed : `${scrubbed.slice(0, max - 1)}…`;
}

/** The most of an error's message a log line keeps. */
const MAX_LOGGED_MESSAGE = 512;

function numeric(value: unknown): number | undefined {
  return typeof value === 'number' ? value : undefined;
}

/**
 * An error as a log line carries it: type, scrubbed message, HTTP status, reason and call when it has
 * them, and the stack's frames (not its first line, which repeats the message). Never `cause`, nor an
 * HTTP client exception's message, body or headers, which repeat the server's response.
 */
export function serializeError(error: unknown): Record<string, unknown> {
  if (typeof error !== 'object' || error === null)
    return { message: scrubbedExcerpt(String(error), MAX_LOGGED_MESSAGE) };
  const fields = error as Record<string, unknown>;
  const status = numeric(fields.status) ?? numeric(fields.code) ?? numeric(fields.statusCode);
  const response = 'body' in fields || 'headers' in fields;
  const message = response
    ? `HTTP ${status ?? 'error'} (the response is not logged)`
    : scrubbedExcerpt(typeof fields.message === 'string' ? fields.message : 'error', MAX_LOGGED_MESSAGE);
  const frames =
    typeof fields.stack === 'string'
      ? fields.stack
          .split('\n')
          .filter((line) => /^\s+at /.test(line))
          .slice(0, 12)
          .join('\n')
      : '';
  return {
    type: typeof fields.name === 'string' ? scrubbedExcerpt(fields.name, 64) : 'Error',
    message,
    ...(status === undefined ? {} : { status }),
    ...(typeof fields.reason === 'string' ? { reason: scrubbedExcerpt(fields.reason, 64) } : {}),
    ...(typeof fields.call === 'string' ? { call: scrubbedExcerpt(fields.call, 256) } : {}),
    ...(frames === '' ? {} : { stack: frames }),
  };
}

/** Errors among a line's fields, under any name, are logged as serializeError describes. */
function withSafeErrors(object: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const key in object) {
    const value = object[key];
    if (value instanceof Error) {
      copy ??= { ...object };
      copy[key] = serializeError(value);
    }
  }
  return copy ?? object;
}

export interface LoggerOptions {
  readonly level?: LevelWithSilent;
  /** Where lines go; standard output by default. Tests pass a stream they can search. */
  readonly destination?: DestinationStream;
  /**
   * Sees every line as formatted, before the final scrub. For tests: a key found here is one the
   * operator logged, whether or not the scrub would have caught it (test/security/key-leaks.test.ts).
   */
  readonly beforeScrub?: (line: string) => void;
}

export function createLogger({ level = 'info', destination, beforeScrub }: LoggerOptions = {}): Logger {
  return pino(
    {
      level,
      base: { component: 'keyrotor' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      // `{ err }` (and an Error logged on its own) never carries a cause or an HTTP response.
      serializers: { err: serializeError },
      formatters: { level: (label) => ({ level: label }), log: withSafeErrors },
      hooks: {
        // The last line of defence: a key that slipped into a message or an error never reaches the sink.
        streamWrite:
          beforeScrub === undefined
            ? scrubKeys
            : (line) => {
                beforeScrub(line);
                return scrubKeys(line);
              },
      },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
