import { describe, expect, it } from 'vitest';

import { MAX_CONDITION_MESSAGE, READY, setCondition, truncateMessage } from './conditions.ts';

const now = new Date('2026-05-09T10:00:00Z');

describe('setCondition', () => {
  it('cuts a long message to MAX_CONDITION_MESSAGE characters ending in "…", well inside the CRD maxLength 2048', () => {
    const [condition] = setCondition(
      undefined,
      { type: READY, status: 'False', reason: 'NotPermitted', message: 'broken rule; '.repeat(1000) },
      now,
      1,
    );
    expect(MAX_CONDITION_MESSAGE).toBeLessThanOrEqual(1024);
    expect(condition?.message).toHaveLength(MAX_CONDITION_MESSAGE);
    expect(condition?.message.endsWith('…')).toBe(true);
    expect(condition?.message.startsWith('broken rule; broken rule;')).toBe(true);
  });

  it('keeps a message that fits as it is', () => {
    const message = 'x'.repeat(MAX_CONDITION_MESSAGE);
    const [condition] = setCondition(
      undefined,
      { type: READY, status: 'True', reason: 'Ready', message },
      now,
      1,
    );
    expect(condition?.message).toBe(message);
  });

  it('gives the same message on every pass, so a long one is not a status change', () => {
    const update = {
      type: READY,
      status: 'False',
      reason: 'NotPermitted',
      message: 'y'.repeat(5000),
    } as const;
    const first = setCondition(undefined, update, now, 1);
    const second = setCondition(first, update, new Date(now.getTime() + 60_000), 1);
    expect(second).toEqual(first);
  });
});

describe('truncateMessage', () => {
  it('never leaves half of a surrogate pair', () => {
    const message = `${'a'.repeat(1022)}😀😀`;
    const cut = truncateMessage(message);
    expect(cut).toBe(`${'a'.repeat(1022)}…`);
    expect(cut.length).toBeLessThanOrEqual(MAX_CONDITION_MESSAGE);
  });
});
