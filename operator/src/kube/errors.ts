import { scrubKeys } from '../observability/logger.ts';

/**
 * One shape for every failure of a call to the API server: generated-client ApiExceptions (numeric
 * `code`, text `body`), watch errors (`statusCode`), aborts and network errors. It names the call and
 * the object, carries the HTTP status and the server's reason, and never carries key material.
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
    options?: ErrorOptions & { retryAfterMs?: number | undefined },
  ) {
    super(
      scrubKeys(`${call}: ${status === undefined ? '' : `HTTP ${status} `}${reason}: ${message}`),
      options,
    );
    this.status = status;
    this.reason = reason;
    this.call = call;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

interface ServerStatus {
  reason?: string;
  message?: string;
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
  const message = body.message ?? (status === undefined ? fallback : 'request failed');
  const reason =
    body.reason ?? (name === 'AbortError' ? 'Aborted' : status === undefined ? 'NetworkError' : 'Unknown');
  const headers = (error as { headers?: Record<string, string> }).headers;
  return new KubeError(call, status, reason, message, {
    cause: error,
    retryAfterMs: retryAfterMs(headers?.['retry-after']),
  });
}

/** A Retry-After header (whole seconds, as the API server sends it; at most an hour) in milliseconds. */
export function retryAfterMs(header: string | undefined): number | undefined {
  if (header === undefined || !/^\d{1,4}$/.test(header.trim())) return undefined;
  return Math.min(Number(header) * 1000, 3_600_000);
}

export const isNotFound = (error: unknown) => error instanceof KubeError && error.status === 404;
export const isConflict = (error: unknown) => error instanceof KubeError && error.status === 409;

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
