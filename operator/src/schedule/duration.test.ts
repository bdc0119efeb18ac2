import { describe, expect, it } from 'vitest';

import { formatDuration, parseDuration } from './duration.ts';

describe('durations', () => {
  it.each([
    ['90d', 90 * 86_400_000],
    ['720h', 720 * 3_600_000],
    ['90m', 90 * 60_000],
    ['1h30m', 90 * 60_000],
    ['45s', 45_000],
    ['1h0m30s', 3_630_000],
  ])('parses %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '3 days', '1.5h', '-1h', 'h', '1d12h', '1w', '10ms'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('formats whole days as days, the rest in hours, minutes and seconds', () => {
    expect(formatDuration(90 * 86_400_000)).toBe('90d');
    expect(formatDuration(90 * 60_000)).toBe('1h30m');
    expect(formatDuration(0)).toBe('0s');
    expect(parseDuration(formatDuration(30 * 86_400_000))).toBe(30 * 86_400_000);
  });
});
