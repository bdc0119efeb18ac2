import type { HistoryEntry } from '../api/types.ts';

export const HISTORY_LIMIT = 10;

/** The history with `entries` added, newest first, keeping the last HISTORY_LIMIT keys once each. */
export function withHistory(
  history: readonly HistoryEntry[] | undefined,
  entries: readonly HistoryEntry[],
): HistoryEntry[] {
  const added = new Set(entries.map((entry) => entry.keyId));
  return [...entries, ...(history ?? []).filter((entry) => !added.has(entry.keyId))].slice(0, HISTORY_LIMIT);
}
