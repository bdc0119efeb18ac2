import { spawn } from 'node:child_process';
import path from 'node:path';

const buildScript = path.join(import.meta.dirname, 'build.sh');

/**
 * Returns the folder holding etcd, kube-apiserver, kube-controller-manager and kubectl, building them
 * from the pinned Go modules first if the cache does not have them (build.sh prints the folder last).
 * Build progress goes to this process's stderr.
 */
export async function controlPlaneBinaries(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [buildScript], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (stdout += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const binDir = stdout.trim().split('\n').at(-1);
      if (code === 0 && binDir) resolve(binDir);
      else reject(new Error(`${buildScript} failed with exit code ${String(code)}`));
    });
  });
}
