import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

import { inject } from 'vitest';

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs helm or kubectl from the control plane's build, against the run's cluster; never throws. */
export function tool(name: 'helm' | 'kubectl', args: string[], input?: string): Promise<ToolResult> {
  const binary = path.join(inject('controlPlaneBin'), name);
  const home = path.join(os.tmpdir(), 'keyrotor-helm-home');
  return new Promise((resolve) => {
    const child = execFile(
      binary,
      [...args, '--kubeconfig', inject('kubeconfig')],
      {
        env: {
          ...process.env,
          HELM_CONFIG_HOME: path.join(home, 'config'),
          HELM_DATA_HOME: path.join(home, 'data'),
          HELM_CACHE_HOME: path.join(home, 'cache'),
        },
        maxBuffer: 32 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}
