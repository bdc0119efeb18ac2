import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';

import { generateKey } from '../keys/format.ts';
import { exitOnUnexpectedErrors, fatalLine, stderrLine, type FailingProcess } from './fatal.ts';
import { REDACTED } from '../observability/logger.ts';

const key = generateKey({ prefix: 'kr', environment: 'production', bits: 256 });
const b64 = Buffer.from(key).toString('base64');
const hex = Buffer.from(key).toString('hex');
const forms = [key, b64, hex, key.slice(8, 20), key.slice(-12)];
const leaks = (text: string) => forms.filter((form) => text.includes(form)).length;

/** A refusal whose body and message echo the key, as an admission webhook's can. */
function echoingRefusal(): ApiException<string> {
  const message = `denied: {"data":{"api-key":"${b64}"}} hex=${hex} raw=${key}`;
  const body = JSON.stringify({ kind: 'Status', reason: 'Forbidden', code: 403, message });
  return new ApiException(403, `HTTP-Code: 403\nBody: ${body}`, body, { 'set-cookie': key });
}

/** A process whose handlers can be called, with what they wrote and the exit codes they asked for. */
function fakeProcess() {
  const listeners = new Map<string, (reason: unknown) => void>();
  const written: string[] = [];
  const exits: number[] = [];
  const target: FailingProcess = {
    on: (event, listener) => listeners.set(event, listener),
    stderr: { write: (text) => written.push(text) },
    exit: (code) => exits.push(code),
  };
  exitOnUnexpectedErrors(target);
  const emit = (event: string, reason: unknown) => {
    const listener = listeners.get(event);
    if (listener === undefined) throw new Error(`no ${event} handler`);
    listener(reason);
  };
  return { emit, written, exits };
}

describe('exitOnUnexpectedErrors', () => {
  const failures: [string, unknown][] = [
    ['an API exception echoing the key', echoingRefusal()],
    ['an Error quoting it', new Error(`bad value ${key}\nat ${b64}`)],
    ['an Error quoting its hex', new TypeError(`bad bytes 0x${hex}`)],
    ['a string', `rejected with ${key}`],
    ['an object', { message: `payload ${b64}`, body: key }],
  ];
  for (const event of ['unhandledRejection', 'uncaughtException'])
    for (const [name, failure] of failures)
      it(`writes one line without the key for ${event} of ${name}, and exits with 1`, () => {
        const { emit, written, exits } = fakeProcess();
        emit(event, failure);
        expect(exits).toEqual([1]);
        expect(written).toHaveLength(1);
        expect(written[0]).toMatch(/^keyrotor: (unhandled rejection|uncaught exception): [^\n]*\n$/);
        expect(leaks(written[0] ?? '')).toBe(0);
      });

  it('keeps the status and reason of an API failure, and the scrubbed first line of others', () => {
    expect(fatalLine('unhandled rejection', echoingRefusal())).toBe(
      'keyrotor: unhandled rejection: request: HTTP 403 Forbidden\n',
    );
    expect(fatalLine(undefined, new Error(`bad value ${key}\nsecond`))).toBe(
      `keyrotor: Error: bad value ${REDACTED}\n`,
    );
  });

  it('fails when a line would carry the key (the check is not vacuous)', () => {
    expect(leaks(`keyrotor: unhandled rejection: ${String(new Error(key))}`)).toBeGreaterThan(0);
  });
});

describe('stderrLine', () => {
  it('scrubs keys from the process its own words, usage text included', () => {
    expect(stderrLine(`--config: unknown option "${key}"\n\nUsage: keyrotor`)).toBe(
      `keyrotor: --config: unknown option "${REDACTED}"\n\nUsage: keyrotor\n`,
    );
    expect(leaks(stderrLine(`lost leadership: ${b64}`))).toBe(0);
  });
});
