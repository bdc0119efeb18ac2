import { Writable } from 'node:stream';

import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';

import type { Environment } from '../api/types.ts';
import { generateKey } from '../keys/format.ts';
import { REDACTED, createLogger, scrubKeys, serializeError } from './logger.ts';

const ENVIRONMENTS: readonly Environment[] = ['production', 'staging', 'test', 'development'];

/** Real keys from the generator: every environment tag, the smallest and largest sizes, long prefixes. */
function sampleKeys(): string[] {
  const keys: string[] = [];
  for (const environment of ENVIRONMENTS)
    for (const [prefix, bits] of [
      ['kr', 128],
      ['kr', 256],
      ['acme2024corp', 512],
    ] as const)
      keys.push(generateKey({ prefix, environment, bits }));
  return keys;
}

const b64 = (text: string) => Buffer.from(text).toString('base64');
const b64url = (text: string) => Buffer.from(text).toString('base64url');
const hex = (text: string) => Buffer.from(text).toString('hex');

/** Every form a key can take in a log line, with the strings that must not survive the scrub. */
function forms(key: string): { name: string; text: string; secrets: string[] }[] {
  const json = JSON.stringify({ data: { 'api-key': b64(key) } });
  return [
    { name: 'raw', text: `the key is ${key}.`, secrets: [key] },
    { name: 'raw in JSON', text: JSON.stringify({ msg: 'x', value: key }), secrets: [key] },
    { name: 'API_KEY_<key>', text: `env API_KEY_${key} set`, secrets: [key] },
    { name: 'api_key_<key>', text: `env api_key_${key} set`, secrets: [key] },
    { name: '<key>_old', text: `${key}_old`, secrets: [key] },
    { name: 'digit before', text: `1${key}`, secrets: [key] },
    { name: 'digit after', text: `${key}9 and more`, secrets: [key] },
    { name: 'url-encoded', text: `GET /v1?api_key%3D${key}%26x%3D1`, secrets: [key] },
    { name: 'url-encoded lowercase', text: `GET /v1?api_key%3d${key}`, secrets: [key] },
    { name: 'base64', text: `data: ${b64(key)}`, secrets: [b64(key), b64(key).replace(/=+$/, '')] },
    {
      name: 'base64 unpadded',
      text: `"${b64(key).replace(/=+$/, '')}"`,
      secrets: [b64(key).replace(/=+$/, '')],
    },
    { name: 'base64url', text: `token=${b64url(key)}`, secrets: [b64url(key)] },
    { name: 'base64, key at offset 1', text: b64(`x${key}`), secrets: [b64(`x${key}`)] },
    { name: 'base64, key at offset 2', text: b64(`xy${key}`), secrets: [b64(`xy${key}`)] },
    { name: 'base64 after a name', text: `API_KEY_${b64(key)}`, secrets: [b64(key).slice(0, 40)] },
    { name: 'base64 after an escaped newline', text: `"a\\n${b64(key)}"`, secrets: [b64(key).slice(0, 40)] },
    {
      name: 'base64 of a JSON blob holding it',
      text: `body ${b64(JSON.stringify({ key }))}`,
      secrets: [b64(JSON.stringify({ key }))],
    },
    { name: 'base64 of a JSON blob of its base64', text: `body ${b64(json)}`, secrets: [b64(json)] },
    { name: 'server message echoing Secret data', text: `denied: ${json}`, secrets: [b64(key)] },
    { name: 'hex', text: `hex ${hex(key)}`, secrets: [hex(key)] },
    { name: 'hex, upper case', text: `HEX:${hex(key).toUpperCase()}`, secrets: [hex(key).toUpperCase()] },
    { name: 'hex at an odd offset', text: `0x1${hex(key)}`, secrets: [hex(key)] },
    {
      name: 'hex of a JSON blob holding it',
      text: hex(JSON.stringify({ key })),
      secrets: [hex(JSON.stringify({ key }))],
    },
  ];
}

describe('scrubKeys', () => {
  const keys = sampleKeys();
  // Test names never show a key: the forms are named, and results are compared as booleans.
  for (const { name } of forms(keys[0] ?? '')) {
    it(`removes keys written ${name}`, () => {
      for (const key of keys) {
        const form = forms(key).find((candidate) => candidate.name === name);
        if (form === undefined) throw new Error(`no form ${name}`);
        const scrubbed = scrubKeys(form.text);
        expect(scrubbed.includes(REDACTED)).toBe(true);
        expect(form.secrets.some((secret) => scrubbed.includes(secret))).toBe(false);
        expect(scrubbed.includes(key)).toBe(false);
      }
    });
  }

  it('replaces the whole encoded token and leaves the text around it', () => {
    const key = keys[1] ?? '';
    expect(scrubKeys(`before ${b64(key)} after`) === `before ${REDACTED} after`).toBe(true);
    expect(scrubKeys(`before ${hex(key)} after`) === `before ${REDACTED} after`).toBe(true);
  });

  it('leaves lines without keys as they are', () => {
    const line = JSON.stringify({
      level: 'info',
      time: '2026-05-09T10:00:00.000Z',
      uid: '0b6e4f7e-3c1a-4c59-9a51-3f8d0c4b1e2a',
      keyId: '3f2a1b0c9d8e7f6a',
      hash: 'a'.repeat(8) + 'b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8',
      path: '/apis/keyrotor.dev/v1alpha1/namespaces/trading-production-eu-west/apikeys/trading-bot',
      data: b64('{"hello":"world, this is a long enough text to look like base64"}'),
      msg: 'reconciled',
    });
    expect(scrubKeys(line)).toBe(line);
    // Key-shaped, but too short to be a key body: left alone.
    expect(scrubKeys('kr_live_short and kr_test_abc')).toBe('kr_live_short and kr_test_abc');
  });
});

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', destination }) };
}

/** An ApiException as client-node throws it for a refused write: the server's answer, headers too. */
function refusal(key: string): ApiException<string> {
  const message = `admission webhook denied the request: ${JSON.stringify({ data: { 'api-key': b64(key) } })}`;
  const body = JSON.stringify({ kind: 'Status', reason: 'Forbidden', code: 403, message });
  return new ApiException(
    403,
    `HTTP-Code: 403\nMessage: Unknown API Status Code!\nBody: ${body}\nHeaders: {"audit-id":"x"}`,
    body,
    {
      'audit-id': 'x',
      'set-cookie': `session=${b64(key)}`,
    },
  );
}

describe('createLogger', () => {
  const key = generateKey({ prefix: 'kr', environment: 'production', bits: 256 });

  it('logs an HTTP client exception under err without its message, body or headers', () => {
    const { lines, logger } = capture();
    logger.warn({ err: refusal(key) }, 'write failed');
    logger.error(refusal(key), 'write failed');
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line.includes('Headers')).toBe(false);
      expect(line.includes('audit-id')).toBe(false);
      expect(line.includes('admission webhook')).toBe(false);
      expect(line.includes(b64(key))).toBe(false);
      expect((JSON.parse(line) as { err: { status: number } }).err.status).toBe(403);
    }
  });

  it('never logs the cause of an error, nor an exception under another name', () => {
    const { lines, logger } = capture();
    logger.warn({ err: new Error('apply failed', { cause: refusal(key) }) }, 'write failed');
    logger.warn({ failure: refusal(key), detail: { nested: true } }, 'write failed');
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line.includes('Headers')).toBe(false);
      expect(line.includes('cause')).toBe(false);
      expect(line.includes(b64(key))).toBe(false);
    }
    expect((JSON.parse(lines[1] ?? '{}') as { failure: { status: number } }).failure.status).toBe(403);
  });

  it('scrubs encoded keys from messages and fields, and redacts Secret data five levels down', () => {
    const { lines, logger } = capture();
    logger.info({ note: `echo ${hex(key)}` }, `saw ${b64(key)}`);
    logger.info({ a: { b: { c: { data: { 'api-key': 'plain-value' }, stringData: { x: 'y' } } } } }, 'deep');
    const [first = '', second = ''] = lines;
    expect(first.includes(hex(key)) || first.includes(b64(key))).toBe(false);
    expect((JSON.parse(second) as { a: { b: { c: unknown } } }).a.b.c).toEqual({
      data: REDACTED,
      stringData: REDACTED,
    });
  });

  it('shows beforeScrub each line as formatted, and writes only the scrubbed line', () => {
    const unscrubbed: string[] = [];
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString('utf8'));
        callback();
      },
    });
    const logger = createLogger({ destination, beforeScrub: (line) => unscrubbed.push(line) });
    logger.info({ data: { 'api-key': key } }, `saw ${key}`);
    expect(unscrubbed).toHaveLength(1);
    expect(unscrubbed[0]?.includes(`saw ${key}`)).toBe(true);
    // Path redaction has run before the hook; only the final scrub has not.
    expect(unscrubbed[0]?.includes(`"data":"${REDACTED}"`)).toBe(true);
    expect(lines.join('').includes(key)).toBe(false);
    expect(lines.join('').includes(`saw ${REDACTED}`)).toBe(true);
  });

  it('keeps an error message and stack frames, scrubbed, but not the stack header that repeats the message', () => {
    const serialized = serializeError(new TypeError(`bad ${b64(key)}`));
    expect(serialized.type).toBe('TypeError');
    expect(String(serialized.message).startsWith('bad ')).toBe(true);
    expect(JSON.stringify(serialized).includes(b64(key))).toBe(false);
    expect(String(serialized.stack)).toMatch(/^\s+at /);
  });
});
