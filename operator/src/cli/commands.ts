// The pure parts of the keyrotor CLI: what it prints. Everything here is safe to show: key ids,
// never keys.
import type { ApiKey } from '../api/types.ts';
import { keyId, parseKey } from '../keys/format.ts';

export interface KeyStatusRow {
  readonly namespace: string;
  readonly name: string;
  readonly ready: string;
  readonly reason: string;
  readonly keyId: string;
  readonly expires: string;
  readonly nextRotation: string;
  readonly graceEnds: string;
  readonly lastEvent: string;
}

export function statusRow(apiKey: ApiKey, lastEvent: string | undefined): KeyStatusRow {
  const ready = apiKey.status?.conditions?.find((condition) => condition.type === 'Ready');
  return {
    namespace: apiKey.metadata.namespace,
    name: apiKey.metadata.name,
    ready: ready?.status ?? 'Unknown',
    reason: ready?.reason ?? 'Pending',
    keyId: apiKey.status?.keyId ?? '-',
    expires: apiKey.status?.expiresAt ?? '-',
    nextRotation: apiKey.status?.nextRotationAt ?? '-',
    graceEnds: apiKey.status?.graceEndsAt ?? '-',
    lastEvent: lastEvent ?? '-',
  };
}

/** Columns padded like kubectl's tables. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function statusTable(rows: readonly KeyStatusRow[], withNamespace: boolean): string {
  const headers = [
    'NAME',
    'READY',
    'REASON',
    'KEY ID',
    'EXPIRES',
    'NEXT ROTATION',
    'GRACE ENDS',
    'LAST EVENT',
  ];
  const cells = rows.map((row) => [
    row.name,
    row.ready,
    row.reason,
    row.keyId,
    row.expires,
    row.nextRotation,
    row.graceEnds,
    row.lastEvent,
  ]);
  return withNamespace
    ? table(
        ['NAMESPACE', ...headers],
        cells.map((cell, index) => [rows[index]?.namespace ?? '', ...cell]),
      )
    : table(headers, cells);
}

export function historyTable(apiKey: ApiKey): string {
  const current = apiKey.status?.keyId
    ? [[apiKey.status.keyId, apiKey.status.issuedAt ?? '-', '(current)', '-']]
    : [];
  const retired = (apiKey.status?.history ?? []).map((entry) => [
    entry.keyId,
    entry.issuedAt ?? '-',
    entry.retiredAt,
    entry.reason,
  ]);
  return table(['KEY ID', 'ISSUED', 'RETIRED', 'REASON'], [...current, ...retired]);
}

export interface CheckResult {
  readonly valid: boolean;
  readonly message: string;
  readonly keyId?: string;
}

/** Judges a key read from stdin without ever repeating it. */
export function checkKey(input: string): CheckResult {
  const key = input.trim();
  if (key === '') return { valid: false, message: 'no key on standard input' };
  const parsed = parseKey(key);
  if (!parsed.ok) return { valid: false, message: `not a valid keyrotor key: ${parsed.reason}` };
  const { prefix, environment, bits } = parsed.key;
  return {
    valid: true,
    keyId: keyId(key),
    message: `valid keyrotor key: prefix ${prefix}, environment ${environment}, ${bits} bits, key id ${keyId(key)}`,
  };
}
