// The benchmarks record the operator's warnings and errors with each result (bench/measure.ts), so a
// run that failed requests on the way says so: counted by message, call and reason, names folded.
import { describe, expect, it } from 'vitest';

import { problems } from '../../bench/measure.ts';

describe('problems: the operator log lines a benchmark result carries', () => {
  it('counts warnings and errors by message, call, status and reason, whatever the object names', () => {
    const lines = [
      { level: 'info', msg: 'caches synced' },
      {
        level: 'warn',
        msg: 'reconcile failed; will retry',
        error: { call: 'read Secret converge/bench-1', reason: 'TimeoutError' },
      },
      {
        level: 'warn',
        msg: 'reconcile failed; will retry',
        error: { call: 'read Secret converge/bench-2', reason: 'TimeoutError' },
      },
      { level: 'error', msg: 'verifier write failed', error: { status: 409, reason: 'Conflict' } },
      { level: 'debug', msg: 'reconciled' },
      { level: 50, msg: 'numbered' },
    ];
    expect(problems(lines)).toEqual({
      'reconcile failed; will retry / read Secret <namespace>/<name> / TimeoutError': 2,
      'verifier write failed / 409 / Conflict': 1,
      numbered: 1,
    });
  });

  it('is empty when the operator warned of nothing', () => {
    expect(problems([{ level: 'info', msg: 'caches synced' }])).toEqual({});
  });
});
