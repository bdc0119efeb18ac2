import * as crypto from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it, vi } from 'vitest';

import { formatKey, keyHash } from '../keys/format.ts';
import {
  VERIFIER_API_VERSION,
  VerifierDocumentError,
  parseVerifierDocument,
  type VerifierDocument,
  type VerifierEntry,
} from './document.ts';
import { verifierEntry } from './entry.testing.ts';
import { followVerifier } from './follow.ts';
import { writeSecretVolume } from './secret-volume.testing.ts';
import { Verifier, scopeGranted } from './verifier.ts';

vi.mock('node:crypto', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:crypto')>();
  return { ...original, timingSafeEqual: vi.fn(original.timingSafeEqual) };
});

const T0 = Date.parse('2026-11-28T12:00:00Z');
const key = (seed: number, environment: 'production' | 'staging' = 'production') =>
  formatKey({ prefix: 'md', environment, bits: 256 }, new Uint8Array(32).fill(seed));

const entry = (presented: string, overrides: Partial<VerifierEntry> = {}) =>
  verifierEntry(presented, T0, { scopes: ['prices:*', 'orders:read'], ...overrides });

function documentOf(keys: ReturnType<typeof entry>[], revision = 1): VerifierDocument {
  return { apiVersion: VERIFIER_API_VERSION, issuer: 'market-data/prices', revision, keys };
}

describe('Verifier', () => {
  const current = key(1);
  const previous = key(2);
  const verifier = new Verifier(
    documentOf([
      entry(current),
      entry(previous, { notAfter: new Date(T0 - 1).toISOString(), scopes: ['prices:read'] }),
    ]),
  );
  const now = () => T0;

  it('accepts a listed key and says whose it is and what it may do, never echoing the key', () => {
    const result = verifier.verify(current, { now, scope: 'prices:read' });
    expect(result).toEqual({
      valid: true,
      reason: 'Valid',
      keyId: keyHash(current).slice(0, 16),
      scopes: ['prices:*', 'orders:read'],
      environment: 'production',
      consumer: { namespace: 'trading', name: 'bot' },
    });
    expect(JSON.stringify(result)).not.toContain(current);
  });

  it('says Malformed for a wrong shape or checksum, without hashing it', () => {
    const hashes = vi.spyOn(crypto, 'createHash');
    hashes.mockClear();
    const badChecksum = `${current.slice(0, -1)}${current.endsWith('A') ? 'B' : 'A'}`;
    expect(verifier.verify('not-a-key', { now })).toEqual({ valid: false, reason: 'Malformed' });
    expect(verifier.verify(badChecksum, { now })).toEqual({ valid: false, reason: 'Malformed' });
    expect(hashes).not.toHaveBeenCalled();
    // The positive control: the spy does see the verifier's hashing of a well-formed key.
    expect(verifier.verify(current, { now }).reason).toBe('Valid');
    expect(hashes).toHaveBeenCalledTimes(1);
    expect(hashes).toHaveBeenCalledWith('sha256');
  });

  it('says Unknown for a well-formed key whose id it does not list, without comparing hashes', () => {
    const compare = vi.mocked(crypto.timingSafeEqual);
    compare.mockClear();
    expect(verifier.verify(key(3), { now })).toEqual({ valid: false, reason: 'Unknown' });
    expect(compare).not.toHaveBeenCalled();
    expect(verifier.verify(current, { now }).reason).toBe('Valid');
    expect(compare).toHaveBeenCalledTimes(1);
  });

  it('says Unknown when the id (the hash prefix) matches but the whole hash differs, comparing in constant time', () => {
    const presented = key(3);
    const sha256 = keyHash(presented);
    // A listed entry with the same 16-hex id as the presented key, but another hash after it.
    const lastByte = (Number.parseInt(sha256.slice(-2), 16) ^ 0xff).toString(16).padStart(2, '0');
    const sameId = entry(key(4), { keyId: sha256.slice(0, 16), sha256: `${sha256.slice(0, -2)}${lastByte}` });
    const collided = new Verifier(documentOf([sameId]));
    const compare = vi.mocked(crypto.timingSafeEqual);
    compare.mockClear();
    expect(collided.verify(presented, { now })).toEqual({ valid: false, reason: 'Unknown' });
    expect(compare).toHaveBeenCalledTimes(1);
    expect(compare.mock.results[0]).toEqual({ type: 'return', value: false });
  });

  it('says Expired outside [notBefore, notAfter), by the clock at call time', () => {
    expect(verifier.verify(previous, { now }).reason).toBe('Expired');
    expect(verifier.verify(previous, { now: () => T0 - 2 }).reason).toBe('Valid');
    expect(verifier.verify(current, { now: () => T0 - 3_600_001 }).reason).toBe('Expired');
    expect(verifier.verify(current, { now: () => T0 + 3_600_000 }).reason).toBe('Expired');
  });

  it('says InsufficientScope when no scope of the key covers the one asked for', () => {
    expect(verifier.verify(current, { now, scope: 'orders:write' })).toMatchObject({
      valid: false,
      reason: 'InsufficientScope',
      consumer: { namespace: 'trading', name: 'bot' },
    });
    expect(verifier.verify(current, { now, scope: 'orders:read' }).reason).toBe('Valid');
  });

  it('grants scopes exactly or by a trailing wildcard', () => {
    expect(scopeGranted(['prices:*'], 'prices:read')).toBe(true);
    expect(scopeGranted(['prices:*'], 'pricesx')).toBe(false);
    expect(scopeGranted(['*'], 'anything')).toBe(true);
    expect(scopeGranted(['prices:read'], 'prices:readx')).toBe(false);
  });
});

describe('parseVerifierDocument', () => {
  const good = documentOf([entry(key(1))]);

  it('reads what it is given', () => {
    expect(parseVerifierDocument(JSON.stringify(good))).toEqual(good);
  });

  it.each([
    ['{', 'not JSON'],
    [JSON.stringify({ ...good, apiVersion: 'v0' }), 'apiVersion must be keyrotor.dev/verifier/v1'],
    [JSON.stringify({ ...good, revision: 1.5 }), 'revision must be a whole number'],
    [JSON.stringify({ ...good, keys: [{ ...entry(key(1)), sha256: 'ABC' }] }), 'keys[0]: sha256 must be'],
    [JSON.stringify({ ...good, keys: [{ ...entry(key(1)), keyId: '0000' }] }), 'keys[0]: keyId must be'],
    [
      JSON.stringify({ ...good, keys: [{ ...entry(key(1)), notAfter: 'soon' }] }),
      'keys[0]: notAfter must be',
    ],
    [JSON.stringify({ ...good, keys: [{ ...entry(key(1)), consumer: 'bot' }] }), 'keys[0]: consumer must'],
    [
      JSON.stringify({ ...good, keys: [{ ...entry(key(1)), notBefore: '2026' }] }),
      'keys[0]: notBefore must be',
    ],
    [
      JSON.stringify({
        ...good,
        keys: [entry(key(1), { notBefore: '2026-02-01T00:00:00Z', notAfter: '2026-01-01T00:00:00Z' })],
      }),
      'keys[0]: notAfter must be after notBefore',
    ],
    [JSON.stringify({ ...good, keys: [entry(key(1)), entry(key(1))] }), 'keys[1]: keyId '],
  ])('refuses %s', (text, message) => {
    expect(() => parseVerifierDocument(text)).toThrow(VerifierDocumentError);
    expect(() => parseVerifierDocument(text)).toThrow(message);
  });
});

describe('docs/verifier.schema.json', () => {
  it('describes the same fields the parser checks and keyrotor writes', async () => {
    const schemaFile = path.resolve(import.meta.dirname, '../../../docs/verifier.schema.json');
    const schema = JSON.parse(await readFile(schemaFile, 'utf8')) as {
      required: string[];
      properties: { apiVersion: { const: string }; keys: { items: { required: string[] } } };
    };
    const document = documentOf([entry(key(1))]);
    expect(schema.properties.apiVersion.const).toBe(VERIFIER_API_VERSION);
    expect([...schema.required].sort()).toEqual(Object.keys(document).sort());
    expect([...schema.properties.keys.items.required].sort()).toEqual(Object.keys(entry(key(1))).sort());
  });
});

describe('followVerifier', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const kubeletWrite = (root: string, text: string, generation: number) =>
    writeSecretVolume(root, { 'verifier.json': text }, generation);

  it('follows the kubelet swapping the mounted file, and keeps the last good one on a bad update', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'keyrotor-verifier-'));
    const first = key(1);
    const second = key(2);
    await kubeletWrite(dir, JSON.stringify(documentOf([entry(first)], 1)), 1);
    const errors: Error[] = [];
    const followed = await followVerifier(path.join(dir, 'verifier.json'), {
      pollMs: 60_000,
      onError: (error) => errors.push(error),
    });
    try {
      const now = () => T0;
      expect(followed.verify(first, { now }).reason).toBe('Valid');
      expect(followed.verify(second, { now }).reason).toBe('Unknown');

      // A rotation: the new key joins; then the old one's grace period ends.
      await kubeletWrite(dir, JSON.stringify(documentOf([entry(second), entry(first)], 2)), 2);
      await vi.waitFor(() => {
        expect(followed.revision).toBe(2);
      });
      expect(followed.verify(second, { now }).reason).toBe('Valid');
      await kubeletWrite(dir, JSON.stringify(documentOf([entry(second)], 3)), 3);
      await vi.waitFor(() => {
        expect(followed.revision).toBe(3);
      });
      expect(followed.verify(first, { now }).reason).toBe('Unknown');

      await kubeletWrite(dir, '{ broken', 4);
      await vi.waitFor(() => {
        expect(errors.length).toBeGreaterThan(0);
      });
      expect(followed.revision).toBe(3);
      expect(followed.verify(second, { now }).reason).toBe('Valid');
    } finally {
      followed.close();
    }
  });
});
