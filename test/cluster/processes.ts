import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** A control-plane component started by the harness, recorded so that another process can stop it. */
export interface ComponentProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
}

export interface StartOptions {
  readonly logFile: string;
  /**
   * Test runs tie each component to the harness with a parent-death signal (setpriv), so that even a
   * harness killed with SIGKILL leaves no orphans. `cluster:up` detaches them instead.
   */
  readonly detached: boolean;
}

export function startProcess(
  name: string,
  binary: string,
  args: string[],
  options: StartOptions,
): ComponentProcess {
  const log = openSync(options.logFile, 'a');
  const [command, argv] = options.detached
    ? [binary, args]
    : ['setpriv', ['--pdeathsig', 'KILL', '--', binary, ...args]];
  try {
    const child = spawn(command, argv, { stdio: ['ignore', log, log], detached: options.detached });
    if (child.pid === undefined) throw new Error(`could not start ${name} (${binary})`);
    // A component that dies is noticed by the readiness checks (isAlive), not by an 'error' event.
    child.on('error', () => undefined);
    if (options.detached) child.unref();
    return { name, pid: child.pid, logFile: options.logFile };
  } finally {
    closeSync(log);
  }
}

/** True while the process exists and is not a zombie. */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The command line of a live process, to make sure a recorded pid was not reused by something else. */
export async function commandLine(pid: number): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
  } catch {
    return undefined;
  }
}

/** Peak resident memory (VmHWM) in MiB, while the process is alive. */
export async function peakRssMiB(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kib = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
    return kib === undefined ? undefined : Math.round(Number(kib) / 1024);
  } catch {
    return undefined;
  }
}

/** SIGTERM, then SIGKILL if the process is still there after `graceMs`. */
export async function stopProcess(pid: number, graceMs = 10_000): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // Already gone.
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (await isAlive(pid)) {
    if (Date.now() > deadline) {
      signal('SIGKILL');
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function tail(file: string, lines = 30): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
