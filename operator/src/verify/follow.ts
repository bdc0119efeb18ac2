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
  let text = await readFile(file, 'utf8');
  let verifier = new Verifier(parseVerifierDocument(text));
  let reloading: Promise<void> | undefined;
  let again = false;
  let closed = false;
  const reload = async () => {
    try {
      // The content, not the revision, tells a change: a document rewritten under the same revision
      // (by hand, or by a restored backup) must not be ignored.
      const nextText = await readFile(file, 'utf8');
      if (nextText === text || closed) return;
      const next = new Verifier(parseVerifierDocument(nextText));
      text = nextText;
      verifier = next;
      options.onReload?.(next.revision);
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
    // Unreferenced like the poll: following a file must not keep a process alive that forgot close().
    watcher = watch(path.dirname(file), { persistent: false }, schedule);
    watcher.on('error', (error) => options.onError?.(error));
  } catch (error) {
    options.onError?.(error as Error); // the poll still follows updates
  }
  // An update between the first read and the watch would otherwise wait for the poll.
  schedule();
  const poll = setInterval(schedule, options.pollMs ?? 10_000);
  poll.unref();
  return {
    verify: (presented, verifyOptions) => verifier.verify(presented, verifyOptions),
    get revision() {
      return verifier.revision;
    },
    close: () => {
      closed = true;
      clearInterval(poll);
      watcher?.close();
    },
  };
}
