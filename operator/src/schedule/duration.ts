// Durations as the ApiKey spec writes them: whole days (30d), or Go syntax in whole hours, minutes and
// seconds (720h, 90m, 1h30m). The CRD's rules accept exactly this grammar and convert it the same way.

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;
const SECOND_MS = 1_000;
const DURATION_PATTERN = /^(?:(\d{1,5})d|(?:(\d{1,6})h)?(?:(\d{1,6})m)?(?:(\d{1,6})s)?)$/;

/** Milliseconds, or undefined when `text` is not a duration of this grammar. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION_PATTERN.exec(text);
  if (!match || text === '') return undefined;
  const [, d = '0', h = '0', m = '0', s = '0'] = match;
  return Number(d) * DAY_MS + Number(h) * HOUR_MS + Number(m) * MINUTE_MS + Number(s) * SECOND_MS;
}

/** The text of this grammar for `ms` (rounded to whole seconds), e.g. 90 days -> "90d", 90 minutes -> "1h30m". */
export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / SECOND_MS);
  if (seconds === 0) return '0s';
  if ((seconds * SECOND_MS) % DAY_MS === 0) return `${(seconds * SECOND_MS) / DAY_MS}d`;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${s > 0 ? `${s}s` : ''}`;
}
