import { Cron } from 'croner';

/**
 * Cron schedules for rotations, read with standard (Vixie) semantics: five fields, and when both
 * day-of-month and day-of-week are restricted a day matches either (OR). croner does exactly this;
 * node-cron 4 would AND them, so "0 3 1 * 1" would mean "the 1st, if it is a Monday" instead of "the
 * 1st and every Monday". Times are computed in the schedule's IANA time zone.
 */
export interface Schedule {
  /** The first run strictly after `after`, or undefined if the schedule never runs again. */
  nextAfter(after: Date): Date | undefined;
}

export type ScheduleResult = { ok: true; schedule: Schedule } | { ok: false; message: string };

export function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

const parsed = new Map<string, ScheduleResult>();
const PARSED_LIMIT = 1_000;

/**
 * Parses a schedule. Results are kept (by expression and time zone): checking a time zone and building
 * a Cron take about 0.1 ms, and every reconcile of every key with a schedule parses it again, as does
 * every rebuild of an issuer's verifier for each of its keys. A Schedule is immutable, so sharing is safe.
 */
export function parseSchedule(expression: string, timeZone = 'UTC'): ScheduleResult {
  const key = `${expression}\n${timeZone}`;
  const known = parsed.get(key);
  if (known !== undefined) return known;
  const result = parseUncached(expression, timeZone);
  if (parsed.size >= PARSED_LIMIT) parsed.clear();
  parsed.set(key, result);
  return result;
}

/** The @ macros the CRD accepts, as the five fields they stand for (as Vixie cron defines them). */
export const CRON_MACROS: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@hourly': '0 * * * *',
};

function parseUncached(written: string, timeZone: string): ScheduleResult {
  if (!isTimeZone(timeZone))
    return { ok: false, message: `rotation.timeZone "${timeZone}" is not an IANA time zone` };
  const expression = CRON_MACROS[written.trim()] ?? written;
  if (expression.trim().split(/\s+/).length !== 5) {
    return {
      ok: false,
      message: `rotation.schedule "${expression}" must have five fields: minute hour day-of-month month day-of-week`,
    };
  }
  let cron: Cron;
  try {
    cron = new Cron(expression, { timezone: timeZone, mode: '5-part', domAndDow: false, paused: true });
  } catch (error) {
    return {
      ok: false,
      message: `rotation.schedule "${expression}" is not a valid cron schedule: ${(error as Error).message}`,
    };
  }
  return {
    ok: true,
    schedule: {
      nextAfter: (after) => cron.nextRun(after) ?? undefined,
    },
  };
}

/**
 * The longest wait between runs over the coming `horizonMs` (at most `maxRuns` runs looked at), from
 * `from`; undefined when the schedule never runs. A schedule whose gaps exceed a key's lifetime would
 * let the key expire between two rotations.
 */
export function longestGap(
  schedule: Schedule,
  from: Date,
  horizonMs: number,
  maxRuns = 1000,
): number | undefined {
  let previous = schedule.nextAfter(from);
  if (previous === undefined) return undefined;
  let longest = previous.getTime() - from.getTime();
  const end = from.getTime() + horizonMs;
  for (let runs = 0; runs < maxRuns && previous.getTime() < end; runs += 1) {
    const next = schedule.nextAfter(previous);
    if (next === undefined) return Number.POSITIVE_INFINITY;
    longest = Math.max(longest, next.getTime() - previous.getTime());
    previous = next;
  }
  return longest;
}
