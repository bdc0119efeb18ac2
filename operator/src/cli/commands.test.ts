import { describe, expect, it } from 'vitest';

import type { ApiKey } from '../api/types.ts';
import { generateKey, keyId } from '../keys/format.ts';
import { checkKey, historyTable, statusRow, statusTable } from './commands.ts';

const apiKey: ApiKey = {
  apiVersion: 'keyrotor.dev/v1alpha1',
  kind: 'ApiKey',
  metadata: { name: 'bot', namespace: 'trading', uid: 'u' },
  spec: {},
  status: {
    keyId: 'aaaa111122223333',
    issuedAt: '2026-01-01T00:00:00.000Z',
    expiresAt: '2026-04-01T00:00:00.000Z',
    nextRotationAt: '2026-03-02T00:00:00.000Z',
    conditions: [{ type: 'Ready', status: 'True', reason: 'KeyIssued', message: '', lastTransitionTime: '' }],
    history: [
      {
        keyId: 'bbbb111122223333',
        issuedAt: '2025-10-01T00:00:00.000Z',
        retiredAt: '2026-01-01T00:00:00.000Z',
        reason: 'Expiry',
      },
    ],
  },
};

describe('the CLI', () => {
  it('prints a status table like kubectl', () => {
    const text = statusTable([statusRow(apiKey, 'Issued 5m ago')], false);
    const [header, row] = text.split('\n');
    expect(header).toMatch(
      /^NAME\s+READY\s+REASON\s+KEY ID\s+EXPIRES\s+NEXT ROTATION\s+GRACE ENDS\s+LAST EVENT$/,
    );
    expect(row).toMatch(
      /^bot\s+True\s+KeyIssued\s+aaaa111122223333\s+2026-04-01T00:00:00.000Z\s+2026-03-02T00:00:00.000Z\s+-\s+Issued 5m ago$/,
    );
    expect(statusTable([statusRow(apiKey, undefined)], true).split('\n')[1]).toMatch(/^trading\s+bot\s+/);
  });

  it('prints the history, current key first', () => {
    const lines = historyTable(apiKey).split('\n');
    expect(lines[1]).toMatch(/^aaaa111122223333\s+2026-01-01T00:00:00.000Z\s+\(current\)/);
    expect(lines[2]).toMatch(/^bbbb111122223333\s+.*Expiry$/);
  });

  it('checks a key without ever repeating it', () => {
    const key = generateKey({ prefix: 'kr', environment: 'test', bits: 256 });
    const good = checkKey(`${key}\n`);
    expect(good).toEqual({
      valid: true,
      keyId: keyId(key),
      message: expect.stringContaining('environment test, 256 bits') as string,
    });
    // Change the last character to one it is not, so the test cannot draw a key that ends in it.
    const last = key.slice(-1) === 'x' ? 'y' : 'x';
    const broken = checkKey(`${key.slice(0, -1)}${last}`);
    expect(broken.valid).toBe(false);
    expect(JSON.stringify([good, broken])).not.toContain(key.slice(8, 30));
    expect(checkKey('').message).toBe('no key on standard input');
  });
});
