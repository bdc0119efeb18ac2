import { describe, expect, it } from 'vitest';

import { CRON_MACROS, parseSchedule } from './cron.ts';

describe('parseSchedule', () => {
  const from = new Date('2026-03-04T05:06:07Z');

  it.each(Object.entries(CRON_MACROS))('reads %s as "%s"', (macro, fields) => {
    const byMacro = parseSchedule(macro);
    const byFields = parseSchedule(fields);
    expect(byMacro.ok && byFields.ok).toBe(true);
    if (!byMacro.ok || !byFields.ok) return;
    expect(byMacro.schedule.nextAfter(from)).toEqual(byFields.schedule.nextAfter(from));
  });

  it('refuses what is not five fields, naming the field', () => {
    const six = parseSchedule('0 0 3 * * 1');
    expect(six.ok).toBe(false);
    expect(six.ok ? '' : six.message).toContain('rotation.schedule "0 0 3 * * 1" must have five fields');
    const zone = parseSchedule('0 3 * * 1', 'Berlin');
    expect(zone.ok ? '' : zone.message).toBe('rotation.timeZone "Berlin" is not an IANA time zone');
  });
});
