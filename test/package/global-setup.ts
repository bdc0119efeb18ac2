import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import type { TestProject } from 'vitest/node';

const repoRoot = path.resolve(import.meta.dirname, '../..');

declare module 'vitest' {
  export interface ProvidedContext {
    /**
     * keyrotor as a service installs it: a folder with the repository's package.json (a symlink, so
     * its "exports" are the ones under test) and dist/ compiled by `tsc -p tsconfig.build.json`.
     */
    keyrotorPackage: string;
  }
}

/**
 * Compiles keyrotor once per run, as the Dockerfile and `npm pack` do, into a temporary folder rather
 * than the working tree's dist/: a test run neither races `npm run build` nor leaves output behind.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'keyrotor-package-'));
  const packageDir = path.join(root, 'keyrotor');
  await mkdir(packageDir);
  await symlink(path.join(repoRoot, 'package.json'), path.join(packageDir, 'package.json'));
  const started = Date.now();
  const tsc = path.join(repoRoot, 'node_modules/typescript/bin/tsc');
  try {
    await promisify(execFile)(
      process.execPath,
      [tsc, '-p', 'tsconfig.build.json', '--outDir', path.join(packageDir, 'dist')],
      { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024 },
    );
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`tsc -p tsconfig.build.json failed:\n${stdout}${stderr}`, { cause: error });
  }
  console.error(`[package] compiled keyrotor in ${Date.now() - started} ms`);
  project.provide('keyrotorPackage', packageDir);
  return async () => {
    await rm(root, { recursive: true, force: true });
  };
}
