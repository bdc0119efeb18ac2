import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { inject } from 'vitest';

import type { Environment } from '../../operator/src/api/types.ts';
import { formatKey } from '../../operator/src/keys/format.ts';
import {
  VERIFIER_API_VERSION,
  VERIFIER_FILE,
  type VerifierDocument,
  type VerifierEntry,
} from '../../operator/src/verify/document.ts';
import { verifierEntry } from '../../operator/src/verify/entry.testing.ts';
import { writeSecretVolume } from '../../operator/src/verify/secret-volume.testing.ts';

export const repoRoot = path.resolve(import.meta.dirname, '../..');

/** A folder outside the repository whose node_modules/keyrotor is the compiled package (global-setup.ts). */
export async function consumerDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keyrotor-consumer-'));
  await mkdir(path.join(dir, 'node_modules'));
  await symlink(inject('keyrotorPackage'), path.join(dir, 'node_modules', 'keyrotor'));
  return dir;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program to its end; never throws. */
export function run(
  file: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 60_000,
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export const HOUR = 3_600_000;

/** A new random key, as keyrotor issues them. */
export const newKey = (environment: Environment = 'production') =>
  formatKey({ prefix: 'md', environment, bits: 256 }, randomBytes(32));

/** The verifier entry for `key`, valid for an hour either side of now unless `overrides` say otherwise. */
export function entryFor(key: string, overrides: Partial<VerifierEntry> = {}): VerifierEntry {
  return verifierEntry(key, Date.now(), {
    scopes: ['prices:*', 'candles:read'],
    consumer: { namespace: 'trading', name: 'quotes' },
    ...overrides,
  });
}

export function documentOf(keys: VerifierEntry[], revision: number): VerifierDocument {
  return { apiVersion: VERIFIER_API_VERSION, issuer: 'market-data/market-data', revision, keys };
}

/**
 * Writes a verifier document into `dir` as the kubelet updates a Secret volume: a new timestamped folder,
 * `..data` swapped to it atomically, and `verifier.json` a symlink through `..data`. Returns the path a
 * service reads.
 */
export async function kubeletWrite(dir: string, document: VerifierDocument): Promise<string> {
  await writeSecretVolume(dir, { [VERIFIER_FILE]: JSON.stringify(document) }, document.revision);
  return path.join(dir, VERIFIER_FILE);
}
