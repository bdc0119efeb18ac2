// npm run dev, as the README promises: a local control plane, the operator and the examples; a key
// Ready; Ctrl-C stops everything and leaves no process behind.
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';

import type { ControlPlaneState } from '../cluster/control-plane.ts';
import { readApiKey, waitForIssuer } from '../support/operator.ts';
import { waitFor } from '../support/wait.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');

async function processesMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const command = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (command.includes(text)) pids.push(Number(entry));
  }
  return pids;
}

describe('npm run dev', () => {
  it('runs the operator on a local control plane with the examples, and stops cleanly on Ctrl-C', async () => {
    const started = Date.now();
    const child = spawn(process.execPath, [path.join(repoRoot, 'scripts/dev.ts')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.stdout.resume();
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const kubeconfig = await waitFor(() => /^Kubeconfig: (\S+)$/m.exec(stderr)?.[1], {
        description: 'npm run dev to print its kubeconfig',
        timeoutMs: 120_000,
      });
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfig);
      await waitFor(
        async () => {
          const apiKey = await readApiKey(kc, 'default', 'trading-bot').catch(() => undefined);
          return apiKey?.status?.conditions?.find((condition) => condition.type === 'Ready')?.status ===
            'True'
            ? apiKey
            : undefined;
        },
        { description: 'the example key to be Ready', timeoutMs: 60_000 },
      );
      console.error(`[dev test] npm run dev to the first Ready key: ${Date.now() - started} ms`);
      // The issuer example: the client's key is permitted and listed in the API's verifier.
      await waitForIssuer(
        kc,
        'market-data',
        'market-data',
        (issuer) => issuer.status?.activeKeys === 1,
        'the example verifier to list the quotes key',
      );
      const runDir = path.dirname(kubeconfig);
      // etcd's command line names its data dir (under /dev/shm), not the run dir: look for both.
      const { etcdDataDir, components } = JSON.parse(
        await readFile(path.join(runDir, 'control-plane.json'), 'utf8'),
      ) as ControlPlaneState;
      const leftBehind = async () => [
        ...(await processesMentioning(runDir)),
        ...(await processesMentioning(etcdDataDir)),
      ];
      // The positive control: while it runs, the search finds every component, etcd among them.
      expect((await processesMentioning(etcdDataDir)).length).toBeGreaterThan(0);
      expect(components.length).toBeGreaterThanOrEqual(3);
      expect(await leftBehind()).toEqual(
        expect.arrayContaining(components.map((component) => component.pid)),
      );
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(stderr).toContain('[dev] stopped');
      expect(await leftBehind()).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
