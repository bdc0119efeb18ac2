import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { parseVerifierDocument } from './document.ts';
import { Verifier, type VerifyOptions, type VerifyResult } from './verifier.ts';

export interface FollowOptions {
  /** Told when a new revision is loaded, or when an update could not be read (the old one stays). */
  readonly onReload?: (revision: number) => void;
  readonly onError?: (error: Error) => void;
  /** A poll as well as the file watch, in case an update is not signalled; default 10 s. */
  readonly pollMs?: number;
}

export interface FollowedVerifier {
  verify(presented: string, options?: VerifyOptions): VerifyResult;
  /** The revision in use. */
  readonly revision: number;
  close(): void;
}

/**
 * Loads a mounted verifier file and follows its updates. The kubelet updates a mounted Secret by
 * writing a new folder and swapping the `..data` symlink, so the folder is watched (not the file,
 * whose inode never changes under the watcher) and the file read again on any change there. A file
 * that cannot be read or parsed leaves the current verifier in place: keys keep verifying.
 */
export async function followVerifier(file: string, options: FollowOptions = {}): Promise<FollowedVerifier> {
  let verifier = new Verifier(parseVerifierDocument(await readFile(file, 'utf8')));
  let reloading: Promise<void> | undefined;
  let again = false;
  const reload = async () => {
    try {
      const next = new Verifier(parseVerifierDocument(await readFile(file, 'utf8')));
      if (next.revision !== verifier.revision) {
        verifier = next;
        options.onReload?.(next.revision);
      }
    } catch (error) {
      options.onError?.(error as Error);
    }
  };
  const schedule = () => {
    if (reloading !== undefined) {
      again = true;
      return;
    }
    reloading = reload().finally(() => {
      reloading = undefined;
      if (again) {
        again = false;
        schedule();
      }
    });
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(path.dirname(file), schedule);
    watcher.on('error', (error) => options.onError?.(error));
  } catch (error) {
    options.onError?.(error as Error); // the poll still follows updates
  }
  const poll = setInterval(schedule, options.pollMs ?? 10_000);
  poll.unref();
  return {
    verify: (presented, verifyOptions) => verifier.verify(presented, verifyOptions),
    get revision() {
      return verifier.revision;
    },
    close: () => {
      clearInterval(poll);
      watcher?.close();
    },
  };
}
