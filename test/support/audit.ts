// The API server's audit log (test/cluster/control-plane.ts, auditLogFile): which client wrote what,
// and when, by the API server's clock. Fault tests use it to prove that two replicas never wrote at once.
import { readFile } from 'node:fs/promises';

export interface AuditedWrite {
  readonly userAgent: string;
  readonly verb: string;
  readonly resource: string;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly code: number | undefined;
  /** When the API server received the request and when it finished it (epoch ms). */
  readonly receivedAt: number;
  readonly finishedAt: number;
}

interface AuditEvent {
  userAgent?: string;
  verb: string;
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
}

export async function readAuditedWrites(file: string): Promise<AuditedWrite[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as AuditEvent)
    .map((event) => ({
      userAgent: event.userAgent ?? '',
      verb: event.verb,
      resource: [event.objectRef?.resource, event.objectRef?.subresource].filter(Boolean).join('/'),
      namespace: event.objectRef?.namespace,
      name: event.objectRef?.name,
      code: event.responseStatus?.code,
      receivedAt: Date.parse(event.requestReceivedTimestamp),
      finishedAt: Date.parse(event.stageTimestamp),
    }));
}

/** Writes an operator replica made to keyrotor's objects (its User-Agent is keyrotor/<instance>), Lease aside. */
export function replicaWrites(writes: readonly AuditedWrite[], instance: string): AuditedWrite[] {
  return writes.filter(
    (write) =>
      write.userAgent === `keyrotor/${instance}` && write.resource !== 'leases' && write.code !== 403,
  );
}
