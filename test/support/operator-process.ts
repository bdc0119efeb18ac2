// The operator as a separate process, started the way a user would (operator/src/main.ts), for tests
// that kill it and for benchmarks that measure it from outside.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { waitFor } from './wait.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const CLOCK_TICKS = 100; // USER_HZ on Linux

export interface OperatorProcess {
  readonly pid: number;
  /** CPU seconds (user + system) used so far. */
  cpuSeconds(): Promise<number>;
  peakRssMiB(): Promise<number>;
  /** Current resident memory. */
  rssMiB(): Promise<number>;
  /** Sends a signal (SIGHUP: relist and resync). */
  signal(signal: NodeJS.Signals): void;
  /** Every log line, parsed. */
  readonly lines: Record<string, unknown>[];
  /** Standard output and standard error as written, line by line (stderr is still passed through). */
  readonly stdoutLines: string[];
  readonly stderrLines: string[];
  /** Where /healthz, /readyz and /metrics are served. */
  readonly url: string;
  /** SIGTERM: finishes what is in flight, then exits; resolves to the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: a crash, wherever it is. */
  kill(): Promise<void>;
  /** The exit code once it has exited by itself (undefined while it runs). */
  exitCode(): number | undefined;
  /** One series from /metrics, e.g. `keyrotor_leader` or `keyrotor_api_responses_total{code="429"}`. */
  metric(series: string): Promise<number | undefined>;
}

/** A loopback port free at the moment of asking (the operator binds it soon after). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/** Starts `keyrotor` (operator/src/main.ts on this Node) and waits until its caches synced. */
export async function startOperatorProcess(kubeconfig: string, args: string[]): Promise<OperatorProcess> {
  const port = await freePort();
  // The parent-death signal makes sure no operator outlives the test run or benchmark that started it.
  const child: ChildProcess = spawn(
    'setpriv',
    [
      '--pdeathsig',
      'KILL',
      '--',
      process.execPath,
      // e.g. KEYROTOR_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the operator in a benchmark.
      ...(process.env.KEYROTOR_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
      path.join(repoRoot, 'operator/src/main.ts'),
      '--kubeconfig',
      kubeconfig,
      '--bind-address',
      `127.0.0.1:${port}`,
      // The tests scrape /metrics without a token; those that check the token review pass --metrics-auth=true.
      '--metrics-auth=false',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: Record<string, unknown>[] = [];
  const stdoutLines: string[] = [];
  const stderrLines: string[] = [];
  if (child.stdout === null || child.stderr === null || child.pid === undefined)
    throw new Error('could not start the operator');
  // Read for the tests, and shown as before, when stderr was inherited.
  child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  createInterface(child.stderr).on('line', (line) => stderrLines.push(line));
  createInterface(child.stdout).on('line', (line) => {
    stdoutLines.push(line);
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      lines.push({ msg: line });
    }
  });
  const pid = child.pid;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      resolve(code);
    }),
  );
  // Ready once its caches have synced, whatever its log level.
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`the operator exited with code ${child.exitCode}`);
      const response = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      return response?.status === 200 ? true : undefined;
    },
    { description: 'the operator to become ready', timeoutMs: 60_000, intervalMs: 50 },
  ).catch((error: unknown) => {
    // An operator that never became ready must not keep the test process alive.
    child.kill('SIGKILL');
    throw error;
  });
  return {
    pid,
    lines,
    stdoutLines,
    stderrLines,
    cpuSeconds: async () => {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
    },
    rssMiB: async () => {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      return Math.round(Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) / 1024);
    },
    signal: (signal) => {
      child.kill(signal);
    },
    peakRssMiB: async () => {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      return Math.round(Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) / 1024);
    },
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    exitCode: () => child.exitCode ?? undefined,
    metric: async (series) => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    },
  };
}
