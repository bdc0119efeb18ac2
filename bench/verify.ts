// npm run bench:verify -- [--iterations N] [--results file]
// Verification cost per call, warm and cold, as a ratio against a bare SHA-256 of the same key, all in
// one run on one core. No control plane: this is the API's side, in its own process.
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
    keys: { type: 'string', default: '10000' },
    results: { type: 'string', default: path.join(repoRoot, 'bench/RESULTS.md') },
  },
});
const iterations = Number(values.iterations);
const listed = Number(values.keys);
if (!Number.isInteger(iterations) || iterations < 100) throw new Error('--iterations must be at least 100');

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

/** Nanoseconds of each call of `run` over the keys in turn; the result is kept so no call is elided. */
function timeEach(run: (key: string) => unknown): { perCallNs: number[]; sink: unknown[] } {
  const perCallNs: number[] = [];
  const sink: unknown[] = [];
  for (let i = 0; i < iterations; i += 1) {
    const key = keys[i % keys.length] ?? '';
    const start = process.hrtime.bigint();
    const result = run(key);
    perCallNs.push(Number(process.hrtime.bigint() - start));
    if (i % 1000 === 0) sink.push(result);
  }
  return { perCallNs, sink };
}

function summary(perCallNs: number[]) {
  const mean = perCallNs.reduce((a, b) => a + b, 0) / perCallNs.length;
  return { meanNs: Math.round(mean), p50Ns: percentile(perCallNs, 50), p99Ns: percentile(perCallNs, 99) };
}

// Cold: the first verification after loading the document (what a service pays at start or reload).
const loadStart = process.hrtime.bigint();
const verifier = new Verifier(document);
const loadMs = Number(process.hrtime.bigint() - loadStart) / 1e6;
const coldStart = process.hrtime.bigint();
const first = verifier.verify(keys[0] ?? '', { scope: 'prices:read' });
const coldNs = Number(process.hrtime.bigint() - coldStart);
if (!first.valid) throw new Error(`the benchmark's own key did not verify: ${first.reason}`);

// Warm: interleaved rounds so both measurements see the same machine state.
const bare = timeEach((key) => createHash('sha256').update(key).digest());
const verified = timeEach((key) => verifier.verify(key, { scope: 'prices:read' }));
const bareSummary = summary(bare.perCallNs);
const verifySummary = summary(verified.perCallNs);
const result = {
  keysListed: listed,
  iterations,
  loadMs: Number(loadMs.toFixed(1)),
  coldFirstCallNs: coldNs,
  sha256: bareSummary,
  verify: verifySummary,
  verifyOverSha256: Number((verifySummary.meanNs / bareSummary.meanNs).toFixed(2)),
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
await appendResults(values.results, 'verification', { verify: result });
