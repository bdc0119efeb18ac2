// keyrotor/verify as a service imports it: compiled (Node does not strip types under node_modules), through
// package.json "exports", from a folder outside the repository, on this Node.js (24).
import { access, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import packageJson from '../../package.json' with { type: 'json' };
import { keyId } from '../../operator/src/keys/format.ts';
import { consumerDir, documentOf, entryFor, HOUR, kubeletWrite, newKey, repoRoot, run } from './support.ts';

/** The service: what it imports, and what it makes of a few keys. */
const SERVICE = `
import { readFile } from 'node:fs/promises';
import * as verify from 'keyrotor/verify';
import { Verifier, VerifierDocumentError, followVerifier, keyId, parseVerifierDocument } from 'keyrotor/verify';

const file = process.argv[2];
const keys = JSON.parse(process.env.TEST_KEYS);
const verifier = new Verifier(parseVerifierDocument(await readFile(file, 'utf8')));
const followed = await followVerifier(file);
let refused;
try { parseVerifierDocument('{}'); } catch (error) { refused = error instanceof VerifierDocumentError; }
process.stdout.write(JSON.stringify({
  resolved: import.meta.resolve('keyrotor/verify'),
  exports: Object.keys(verify).sort(),
  valid: verifier.verify(keys.valid, { scope: 'prices:read' }),
  followed: followed.verify(keys.valid, { scope: 'candles:read' }).reason,
  insufficientScope: verifier.verify(keys.valid, { scope: 'orders:write' }).reason,
  expired: verifier.verify(keys.expired).reason,
  unknown: verifier.verify(keys.unknown).reason,
  malformed: verifier.verify('md_live_nope').reason,
  keyId: keyId(keys.valid),
  refused,
}));
followed.close(); // and the process ends: nothing else keeps it running
`;

/** A TypeScript service: type-checks only if the "types" the exports map names are there and right. */
const TYPED_SERVICE = `
import { followVerifier, Verifier, parseVerifierDocument, type VerifyResult } from 'keyrotor/verify';

const result: VerifyResult = new Verifier(parseVerifierDocument('{}')).verify('key', { scope: 'prices:read' });
export const consumer: string | undefined = result.valid ? result.consumer.name : undefined;
export const follow: (file: string) => Promise<{ readonly revision: number; close(): void }> = followVerifier;
`;

const packageDir = () => inject('keyrotorPackage');

describe('keyrotor/verify', () => {
  let dir: string;
  let verifierDir: string;
  beforeAll(async () => {
    dir = await consumerDir();
    verifierDir = await mkdtemp(path.join(dir, 'verifier-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs its programs on Node.js 24', () => {
    expect(process.versions.node.split('.')[0]).toBe('24');
  });

  it('is in the exports map, with the code and the declarations that tsc -p tsconfig.build.json emits', async () => {
    const entry = packageJson.exports['./verify'];
    expect(Object.keys(entry)).toEqual(['types', 'default']); // "types" first, or TypeScript skips it
    await access(path.join(packageDir(), entry.default));
    await access(path.join(packageDir(), entry.types));
  });

  it("loads nothing but node: builtins and keyrotor's own verify/ and keys/ modules", async () => {
    const dist = await realpath(path.join(packageDir(), 'dist'));
    const seen = new Set<string>();
    const external = new Set<string>();
    const visit = async (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const { importedFiles } = ts.preProcessFile(await readFile(file, 'utf8'), true, true);
      for (const { fileName } of importedFiles) {
        if (fileName.startsWith('.')) await visit(path.resolve(path.dirname(file), fileName));
        else external.add(fileName);
      }
    };
    await visit(path.join(dist, packageJson.exports['./verify'].default.replace('./dist/', '')));
    expect([...seen].map((file) => path.relative(dist, file)).sort()).toEqual([
      'keys/base62.js',
      'keys/format.js',
      'verify/document.js',
      'verify/follow.js',
      'verify/index.js',
      'verify/verifier.js',
    ]);
    expect([...external].filter((specifier) => !specifier.startsWith('node:'))).toEqual([]);
  });

  it('verifies keys in a plain .mjs service outside the repository that imports it by name', async () => {
    const keys = { valid: newKey(), expired: newKey(), unknown: newKey() };
    const file = await kubeletWrite(
      verifierDir,
      documentOf(
        [
          entryFor(keys.valid),
          entryFor(keys.expired, {
            notBefore: new Date(Date.now() - 2 * HOUR).toISOString(),
            notAfter: new Date(Date.now() - HOUR).toISOString(),
          }),
        ],
        1,
      ),
    );
    await writeFile(path.join(dir, 'service.mjs'), SERVICE);
    const result = await run(process.execPath, ['service.mjs', file], dir, {
      TEST_KEYS: JSON.stringify(keys),
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const output = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(output).toEqual({
      resolved: expect.stringMatching(/\/dist\/verify\/index\.js$/) as string,
      exports: [
        'VERIFIER_API_VERSION',
        'VERIFIER_FILE',
        'Verifier',
        'VerifierDocumentError',
        'followVerifier',
        'keyId',
        'parseKey',
        'parseVerifierDocument',
        'scopeGranted',
      ],
      valid: {
        valid: true,
        reason: 'Valid',
        keyId: keyId(keys.valid),
        scopes: ['prices:*', 'candles:read'],
        environment: 'production',
        consumer: { namespace: 'trading', name: 'quotes' },
      },
      followed: 'Valid',
      insufficientScope: 'InsufficientScope',
      expired: 'Expired',
      unknown: 'Unknown',
      malformed: 'Malformed',
      keyId: keyId(keys.valid),
      refused: true,
    });
    // From the compiled package, not from the repository's sources or its own dist/.
    const resolved = await realpath(fileURLToPath(output.resolved as string));
    expect(resolved).toBe(path.join(await realpath(packageDir()), 'dist/verify/index.js'));
  });

  it('type-checks a TypeScript service that imports it', async () => {
    await writeFile(path.join(dir, 'typed-service.mts'), TYPED_SERVICE);
    await writeFile(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          target: 'es2024',
          lib: ['es2024'],
          types: [],
          strict: true,
          noEmit: true,
          // The package's declarations are checked too: they must stand on their own.
          skipLibCheck: false,
        },
        files: ['typed-service.mts'],
      }),
    );
    const tsc = path.join(repoRoot, 'node_modules/typescript/bin/tsc');
    const result = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], dir);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });
});
