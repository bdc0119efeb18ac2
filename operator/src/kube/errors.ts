import { scrubbedExcerpt } from '../observability/logger.ts';

/** The most of the server's message a KubeError keeps (scrubbed first): enough to debug, never a body. */
export const MAX_SERVER_MESSAGE = 512;
/** The longest Retry-After honoured: one 429 pauses every request of the process for that long. */
export const MAX_RETRY_AFTER_MS = 60_000;

/** A message fit to keep: key material scrubbed, at most `max` characters (with a trailing "…"). */
export function boundedMessage(message: string, max = MAX_SERVER_MESSAGE): string {
  return scrubbedExcerpt(message, max);
}

/**
 * One shape for every failure of a call to the API server: generated-client ApiExceptions (numeric
 * `code`, text `body`), watch errors (`statusCode`), aborts and network errors. It names the call and
 * the object, carries the HTTP status and the server's reason, and never carries key material: the
 * client's exception is not kept (no `cause`: pino would log its body and headers), and the server's
 * message is scrubbed and cut to MAX_SERVER_MESSAGE characters. The server's message stays out of
 * status and Events all the same (failureSummary): admission webhooks and policies may echo the object.
 */
export class KubeError extends Error {
  override readonly name = 'KubeError';
  /** HTTP status, when the server answered. */
  readonly status: number | undefined;
  /** The server's Status reason (Conflict, NotFound, Invalid, Forbidden, ...) or a client-side one. */
  readonly reason: string;
  readonly call: string;
  /** The server's Retry-After (429 Too Many Requests, 503), in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(
    call: string,
    status: number | undefined,
    reason: string,
    message: string,
    options?: { retryAfterMs?: number | undefined },
  ) {
    const shortReason = boundedMessage(reason, 64);
    const shortCall = boundedMessage(call, 256);
    const http = status === undefined ? '' : `HTTP ${status} `;
    super(`${shortCall}: ${http}${shortReason}: ${boundedMessage(message)}`);
    this.status = status;
    this.reason = shortReason;
    this.call = shortCall;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** A Status body as sent; its fields are checked before use (a proxy may answer anything). */
interface ServerStatus {
  reason?: unknown;
  message?: unknown;
}

function parseBody(body: unknown): ServerStatus {
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as ServerStatus;
    } catch {
      return { message: body };
    }
  }
  return typeof body === 'object' && body !== null ? body : {};
}

function numberField(error: object, field: string): number | undefined {
  const value = (error as Record<string, unknown>)[field];
  return typeof value === 'number' ? value : undefined;
}

/** Wraps any error thrown by a client call as a KubeError naming `call` ("patch Secret ns/name"). */
export function toKubeError(call: string, error: unknown): KubeError {
  if (error instanceof KubeError) return error;
  if (typeof error !== 'object' || error === null)
    return new KubeError(call, undefined, 'Unknown', String(error));
  const status = numberField(error, 'code') ?? numberField(error, 'statusCode');
  const body = parseBody((error as { body?: unknown }).body);
  const name = (error as { name?: string }).name;
  const fallback = error instanceof Error ? error.message : 'request failed';
  // ApiException messages repeat the whole response with headers; the server's own message is enough.
  const serverMessage = typeof body.message === 'string' ? body.message : undefined;
  const message = serverMessage ?? (status === undefined ? fallback : 'request failed');
  const reason =
    (typeof body.reason === 'string' ? body.reason : undefined) ??
    (name === 'AbortError' ? 'Aborted' : status === undefined ? 'NetworkError' : 'Unknown');
  const headers = (error as { headers?: Record<string, string> }).headers;
  // No `cause`: the exception's body and headers must not travel with the error (pino logs causes).
  return new KubeError(call, status, reason, message, {
    retryAfterMs: retryAfterMs(headers?.['retry-after']),
  });
}

/** A Retry-After header (whole seconds, as the API server sends it; at most a minute) in milliseconds. */
export function retryAfterMs(header: string | undefined): number | undefined {
  if (header === undefined || !/^\d{1,9}$/.test(header.trim())) return undefined;
  return Math.min(Number(header) * 1000, MAX_RETRY_AFTER_MS);
}

/** A generated-client ApiException or a watch error: an HTTP status with the response attached. */
function isClientException(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    !(error instanceof KubeError) &&
    ('body' in error || 'headers' in error) &&
    (numberField(error, 'code') !== undefined || numberField(error, 'statusCode') !== undefined)
  );
}

/**
 * What status conditions and Events may say about a failed call: the call, the HTTP status and the
 * server's reason ("apply Secret ns/name: HTTP 403 Forbidden"), never the server's message, which an
 * admission webhook or policy may have built from the object (key material included).
 */
export function failureSummary(error: unknown): string {
  const failure =
    error instanceof KubeError ? error : isClientException(error) ? toKubeError('request', error) : undefined;
  if (failure === undefined)
    return error instanceof Error ? boundedMessage(error.name, 64) : 'request failed';
  const status = failure.status === undefined ? '' : ` HTTP ${failure.status}`;
  // A reason is a Kubernetes StatusReason word (Forbidden, Invalid, ...); a webhook may send anything.
  const reason = /^[A-Z][A-Za-z]{0,39}$/.test(failure.reason) ? failure.reason : 'Unknown';
  return `${failure.call}:${status} ${reason}`;
}

export interface ErrorFields {
  readonly call?: string;
  readonly status?: number;
  readonly reason?: string;
  /** Scrubbed and at most MAX_SERVER_MESSAGE characters. */
  readonly message: string;
}

/**
 * A failure as a log line may carry it: a plain object of the KubeError's fields (call, status,
 * reason, scrubbed message), never the client's exception with its response body and headers. Log
 * `{ error: errorFields(error) }` rather than `{ err: error }`.
 */
export function errorFields(error: unknown): ErrorFields {
  const failure =
    error instanceof KubeError ? error : isClientException(error) ? toKubeError('request', error) : undefined;
  if (failure !== undefined) {
    return {
      call: failure.call,
      ...(failure.status === undefined ? {} : { status: failure.status }),
      reason: failure.reason,
      message: failure.message,
    };
  }
  if (error instanceof Error)
    return { reason: boundedMessage(error.name, 64), message: boundedMessage(error.message) };
  return { message: boundedMessage(String(error)) };
}

/**
 * One line about any error that a process prints as it fails (a bad kubeconfig, an unhandled
 * rejection), with nothing of what the error quotes: js-yaml and JSON.parse errors show a snippet of
 * the source (a kubeconfig's token), client exceptions the server's response. YAML errors keep their
 * reason and position, API errors their call, status and reason, others their scrubbed first line.
 */
export function safeErrorMessage(error: unknown): string {
  if (typeof error !== 'object' || error === null)
    return boundedMessage(String(error).split('\n')[0] ?? '', 256);
  const fields = error as { name?: unknown; reason?: unknown; mark?: { line?: unknown; column?: unknown } };
  if (fields.name === 'YAMLException') {
    const reason = typeof fields.reason === 'string' ? fields.reason : 'malformed';
    const { line, column } = fields.mark ?? {};
    const at =
      typeof line === 'number' && typeof column === 'number'
        ? ` at line ${line + 1}, column ${column + 1}`
        : '';
    return `invalid YAML: ${boundedMessage(reason, 128)}${at}`;
  }
  if (error instanceof SyntaxError) return 'SyntaxError (the source it quotes is not shown)';
  if (error instanceof KubeError || isClientException(error)) {
    const { call, status, reason } = errorFields(error);
    return `${call ?? 'request'}: ${status === undefined ? '' : `HTTP ${status} `}${reason ?? 'failed'}`;
  }
  const name = error instanceof Error ? `${boundedMessage(error.name, 64)}: ` : '';
  const { message } = error as { message?: unknown };
  if (typeof message !== 'string') return `${name}an error without a message`;
  return `${name}${boundedMessage(message.split('\n')[0] ?? '', 256)}`;
}

export const isNotFound = (error: unknown) => error instanceof KubeError && error.status === 404;
export const isConflict = (error: unknown) => error instanceof KubeError && error.status === 409;
export const isForbidden = (error: unknown) => error instanceof KubeError && error.status === 403;

/** 4xx answers other than conflicts and throttling: retrying the same request cannot succeed. */
export function isRejected(error: unknown): boolean {
  return (
    error instanceof KubeError &&
    error.status !== undefined &&
    error.status >= 400 &&
    error.status < 500 &&
    error.status !== 409 &&
    error.status !== 429
  );
}

/** Runs a client call, rethrowing any failure as a KubeError naming the call. */
export async function call<T>(description: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw toKubeError(description, error);
  }
}
