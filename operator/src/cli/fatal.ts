// What the process itself writes to standard error as it fails: one line each, scrubbed like a log line.
import { safeErrorMessage } from '../kube/errors.ts';
import { scrubKeys } from '../observability/logger.ts';

/**
 * `keyrotor: <context>: <summary>` for an error the process dies of. The summary is safeErrorMessage's:
 * call, HTTP status and reason of an API failure (never the server's message or the client's
 * exception), the reason and position of a parser's error (never the source it quotes), else the
 * error's type and scrubbed first line.
 */
export function fatalLine(context: string | undefined, error: unknown): string {
  return `keyrotor: ${context === undefined ? '' : `${context}: `}${safeErrorMessage(error)}\n`;
}

/** `keyrotor: <text>` for the process's own words (a usage error, lost leadership), keys scrubbed. */
export function stderrLine(text: string): string {
  return `keyrotor: ${scrubKeys(text)}\n`;
}

/** The parts of `process` the handlers use (a test passes its own). */
export interface FailingProcess {
  on(event: 'unhandledRejection' | 'uncaughtException', listener: (reason: unknown) => void): unknown;
  readonly stderr: { write(text: string): unknown };
  exit(code: number): unknown;
}

/** Whatever fails unexpectedly is printed as one fatalLine, and the process exits with 1. */
export function exitOnUnexpectedErrors(target: FailingProcess): void {
  target.on('unhandledRejection', (reason) => {
    target.stderr.write(fatalLine('unhandled rejection', reason));
    target.exit(1);
  });
  target.on('uncaughtException', (error) => {
    target.stderr.write(fatalLine('uncaught exception', error));
    target.exit(1);
  });
}
