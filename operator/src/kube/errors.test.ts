import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';

import { generateKey } from '../keys/format.ts';
import {
  KubeError,
  MAX_RETRY_AFTER_MS,
  MAX_SERVER_MESSAGE,
  errorFields,
  failureSummary,
  retryAfterMs,
  safeErrorMessage,
  toKubeError,
} from './errors.ts';

const key = generateKey({ prefix: 'kr', environment: 'production', bits: 256 });
const b64 = Buffer.from(key).toString('base64');
const hex = Buffer.from(key).toString('hex');

/** A refusal whose message echoes the object's data, as an admission webhook or policy can. */
function echoingRefusal(status = 403, reason = 'Forbidden', extra = ''): ApiException<string> {
  const message = `admission denied: {"data":{"api-key":"${b64}"}} hex=${hex} raw=API_KEY_${key}${extra}`;
  const body = JSON.stringify({ kind: 'Status', status: 'Failure', reason, code: status, message });
  return new ApiException(status, `HTTP-Code: ${status}\nBody: ${body}\nHeaders: {"audit-id":"1"}`, body, {
    'audit-id': '1',
    'retry-after': '3600',
  });
}

const leaks = (text: string) => [key, b64, hex].some((secret) => text.includes(secret));

describe('toKubeError', () => {
  it('keeps status, reason and call, and no cause: the exception with its body and headers is dropped', () => {
    const error = toKubeError('apply Secret ns/name', echoingRefusal());
    expect(error).toBeInstanceOf(KubeError);
    expect(error.status).toBe(403);
    expect(error.reason).toBe('Forbidden');
    expect(error.call).toBe('apply Secret ns/name');
    expect(error.cause).toBeUndefined();
    expect('cause' in error).toBe(false);
    expect(JSON.stringify(error).includes('audit-id')).toBe(false);
  });

  it('keeps the server message scrubbed of the key in raw, base64 and hex forms', () => {
    const error = toKubeError('apply Secret ns/name', echoingRefusal());
    expect(error.message.startsWith('apply Secret ns/name: HTTP 403 Forbidden: admission denied: ')).toBe(
      true,
    );
    expect(leaks(error.message)).toBe(false);
    expect(leaks(String(error.stack))).toBe(false);
  });

  it('cuts a long server message to MAX_SERVER_MESSAGE characters', () => {
    const error = toKubeError(
      'apply Secret ns/name',
      echoingRefusal(422, 'Invalid', ' and more.'.repeat(1_000)),
    );
    const prefix = 'apply Secret ns/name: HTTP 422 Invalid: ';
    expect(error.message.length).toBe(prefix.length + MAX_SERVER_MESSAGE);
    expect(error.message.endsWith('…')).toBe(true);
  });

  it('honours Retry-After for at most a minute', () => {
    expect(toKubeError('list Secrets', echoingRefusal(429, 'TooManyRequests')).retryAfterMs).toBe(
      MAX_RETRY_AFTER_MS,
    );
    expect(MAX_RETRY_AFTER_MS).toBe(60_000);
    expect(retryAfterMs('3600')).toBe(60_000);
    expect(retryAfterMs('999999999')).toBe(60_000);
    expect(retryAfterMs('7')).toBe(7_000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(undefined)).toBeUndefined();
  });
});

describe('failureSummary', () => {
  it('gives the call, the HTTP status and the reason, never the server message', () => {
    const summary = failureSummary(toKubeError('apply Secret ns/name', echoingRefusal()));
    expect(summary).toBe('apply Secret ns/name: HTTP 403 Forbidden');
    expect(failureSummary(echoingRefusal(422, 'Invalid'))).toBe('request: HTTP 422 Invalid');
  });

  it('says what failed without a status when the server did not answer', () => {
    const network = toKubeError('get Secret ns/name', Object.assign(new Error('connect ECONNREFUSED'), {}));
    expect(failureSummary(network)).toBe('get Secret ns/name: NetworkError');
    expect(failureSummary(new TypeError(`oops ${key}`))).toBe('TypeError');
    expect(failureSummary('text')).toBe('request failed');
  });
});

describe('errorFields', () => {
  it('is a plain object of the KubeError fields with a scrubbed message', () => {
    const fields = errorFields(toKubeError('apply Secret ns/name', echoingRefusal()));
    expect(Object.getPrototypeOf(fields)).toBe(Object.prototype);
    expect(Object.keys(fields).sort()).toEqual(['call', 'message', 'reason', 'status']);
    expect(fields.status).toBe(403);
    expect(fields.reason).toBe('Forbidden');
    expect(leaks(JSON.stringify(fields))).toBe(false);
  });

  it('turns a raw client exception into the same fields, without its headers', () => {
    const fields = errorFields(echoingRefusal());
    expect(fields.status).toBe(403);
    expect(JSON.stringify(fields).includes('Headers')).toBe(false);
    expect(leaks(JSON.stringify(fields))).toBe(false);
  });

  it('scrubs other errors and values', () => {
    expect(leaks(JSON.stringify(errorFields(new Error(`failed with ${b64}`))))).toBe(false);
    expect(errorFields(new RangeError('out of range'))).toEqual({
      reason: 'RangeError',
      message: 'out of range',
    });
    expect(leaks(JSON.stringify(errorFields(`thrown ${hex}`)))).toBe(false);
  });
});

describe('safeErrorMessage', () => {
  it('does not repeat a malformed kubeconfig, token included', () => {
    const token = 'tok3n-Zx9Zx9Zx9-s3cr3t';
    const kubeconfig = [
      'apiVersion: v1',
      'kind: Config',
      'users:',
      '- name: admin',
      '  user:',
      `    token: ${token}`,
      '     bad: indentation: here',
    ].join('\n');
    let thrown: unknown;
    try {
      new KubeConfig().loadFromString(kubeconfig);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeDefined();
    // The parser's own message quotes the source; the safe one gives the reason and position only.
    expect((thrown as Error).message.includes(token)).toBe(true);
    const message = safeErrorMessage(thrown);
    expect(message.includes(token)).toBe(false);
    expect(message).toMatch(/^invalid YAML: .+ at line \d+, column \d+$/);
  });

  it('does not repeat what JSON.parse quotes, nor a server response', () => {
    let thrown: unknown;
    try {
      JSON.parse(`{"token": "${key}" oops`);
    } catch (error) {
      thrown = error;
    }
    expect(safeErrorMessage(thrown).includes('token')).toBe(false);
    expect(safeErrorMessage(echoingRefusal())).toBe('request: HTTP 403 Forbidden');
    expect(leaks(safeErrorMessage(new Error(`first line ${b64}\nsecond line`)))).toBe(false);
    expect(safeErrorMessage(new Error('first line\nsecond line'))).toBe('Error: first line');
  });
});
