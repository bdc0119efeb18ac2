// npm run bench:verify -- [--iterations N] [--keys N] [--runs N] [--batch N] [--results file]
// Verification cost per call, warm and cold, as a ratio against a bare SHA-256 of the same key, on one
// core. The loops alternate in small batches, an empty loop timed the same way gives the timer's own
// cost (taken off both), and the run is repeated for a spread. No control plane: this is the API's side.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { formatKey } from '../operator/src/keys/format.ts';
import {
  VERIFIER_API_VERSION,
  type VerifierDocument,
  type VerifierEntry,
} from '../operator/src/verify/document.ts';
import { verifierEntry } from '../operator/src/verify/entry.testing.ts';
import { Verifier } from '../operator/src/verify/verifier.ts';
import { appendResults, percentile, repoRoot } from './harness.ts';

const { values } = parseArgs({
  options: {
    iterations: { type: 'string', default: '200000' },
    runs: { type: 'string', default: '7' },
    batch: { type: 'string', default: '100' },
    keys: { type: 'string', default: '10000' },
    results: { type: 'string', default: path.join(repoRoot, 'bench/RESULTS.md') },
  },
});
const iterations = Number(values.iterations);
const listed = Number(values.keys);
const runs = Number(values.runs);
const batch = Number(values.batch);
if (!Number.isInteger(iterations) || iterations < 100) throw new Error('--iterations must be at least 100');
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive whole number');
if (!Number.isInteger(batch) || batch < 1) throw new Error('--batch must be a positive whole number');

const keys = Array.from({ length: listed }, (_, index) => {
  const random = createHash('sha256').update(String(index)).digest();
  return formatKey({ prefix: 'md', environment: 'production', bits: 256 }, random);
});
const entries: VerifierEntry[] = keys.map((key, index) =>
  verifierEntry(key, Date.now(), {
    notAfter: '2100-01-01T00:00:00Z',
    consumer: { namespace: 'clients', name: `client-${index}` },
  }),
);
const document: VerifierDocument = {
  apiVersion: VERIFIER_API_VERSION,
  issuer: 'market-data/prices',
  revision: 1,
  keys: entries,
};

type Loop = 'empty' | 'sha256' | 'verify';
const LOOPS: Record<Loop, (key: string) => unknown> = {
  // The timer's own cost: the same loop, the same indirect call, no work.
  empty: (key) => key,
  sha256: (key) => createHash('sha256').update(key).digest(),
  verify: (key) => verifier.verify(key, { scope: 'prices:read' }),
};
const NAMES = Object.keys(LOOPS) as Loop[];
const sink: unknown[] = [];

/**
 * One run: the three loops interleaved in batches of `batch` calls (empty, sha256, verify, the order
 * turning each batch), every call timed on its own with process.hrtime.bigint(), `iterations` calls each.
 */
function oneRun(iterations: number): Record<Loop, number[]> {
  const perCallNs: Record<Loop, number[]> = { empty: [], sha256: [], verify: [] };
  for (let done = 0, round = 0; done < iterations; done += batch, round += 1) {
    const count = Math.min(batch, iterations - done);
    for (let turn = 0; turn < NAMES.length; turn += 1) {
      const name = NAMES[(round + turn) % NAMES.length] ?? 'empty';
      const run = LOOPS[name];
      const out = perCallNs[name];
      for (let i = done; i < done + count; i += 1) {
        const key = keys[i % keys.length] ?? '';
        const start = process.hrtime.bigint();
        const result = run(key);
        out.push(Number(process.hrtime.bigint() - start));
        if (i % 1000 === 0) sink.push(result);
      }
    }
  }
  return perCallNs;
}

const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;
/** Median and extremes of one figure over the runs. */
function spread(values: readonly number[], digits = 0) {
  const fixed = (value: number) => Number(value.toFixed(digits));
  return {
    median: fixed(percentile(values, 50)),
    min: fixed(Math.min(...values)),
    max: fixed(Math.max(...values)),
  };
}

// Cold: the first verification after loading the document (what a service pays at start or reload).
const loadStart = process.hrtime.bigint();
const verifier = new Verifier(document);
const loadMs = Number(process.hrtime.bigint() - loadStart) / 1e6;
const coldStart = process.hrtime.bigint();
const first = verifier.verify(keys[0] ?? '', { scope: 'prices:read' });
const coldNs = Number(process.hrtime.bigint() - coldStart);
if (!first.valid) throw new Error(`the benchmark's own key did not verify: ${first.reason}`);

// Warm: a tenth of a run to warm up (not kept), then `runs` runs. Each call's mean is net of the
// timer's cost (the empty loop's mean, from the same run).
oneRun(Math.max(batch, Math.floor(iterations / 10)));
const perRun = Array.from({ length: runs }, () => {
  const perCallNs = oneRun(iterations);
  const emptyNs = mean(perCallNs.empty);
  const sha256Ns = mean(perCallNs.sha256) - emptyNs;
  const verifyNs = mean(perCallNs.verify) - emptyNs;
  return {
    emptyNs,
    sha256Ns,
    verifyNs,
    verifyOverSha256: verifyNs / sha256Ns,
    rawRatio: mean(perCallNs.verify) / mean(perCallNs.sha256),
    // Medians of the calls, less swayed by a call the scheduler preempted than the means.
    p50Ratio:
      (percentile(perCallNs.verify, 50) - percentile(perCallNs.empty, 50)) /
      (percentile(perCallNs.sha256, 50) - percentile(perCallNs.empty, 50)),
    sha256P99Ns: percentile(perCallNs.sha256, 99),
    verifyP99Ns: percentile(perCallNs.verify, 99),
  };
});
const over = (figure: keyof (typeof perRun)[number], digits?: number) =>
  spread(
    perRun.map((run) => run[figure]),
    digits,
  );
const result = {
  keysListed: listed,
  iterations,
  runs,
  batch,
  loadMs: Number(loadMs.toFixed(1)),
  coldFirstCallNs: coldNs,
  timerOverheadNs: over('emptyNs'),
  sha256NetMeanNs: over('sha256Ns'),
  verifyNetMeanNs: over('verifyNs'),
  verifyOverSha256: over('verifyOverSha256', 2),
  rawRatioWithTimer: over('rawRatio', 2),
  verifyOverSha256ByP50: over('p50Ratio', 2),
  sha256P99Ns: over('sha256P99Ns'),
  verifyP99Ns: over('verifyP99Ns'),
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
if (sink.length === 0) throw new Error('no result was kept');
await appendResults(values.results, 'verification', { verify: result });
