// The Go and Python verifiers, each in its own test runner (`go test`, `python3 -m unittest`), so that
// `npm test` runs all three verifiers against the same conformance cases (verifiers/testdata; the
// TypeScript one is test/unit/conformance.test.ts). Each runner must show its conformance tests passed,
// not only exit 0: a runner that found no tests would exit 0 too.
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { repoRoot, run } from './support.ts';

const verifiers = path.join(repoRoot, 'verifiers');
/** A cold `go test` compiles the standard library's test dependencies: minutes on two cores. */
const RUNNER_TIMEOUT_MS = 300_000;

describe('the other verifiers pass the conformance cases in their own runners', () => {
  it(
    'Go: go test ./... in verifiers/go (standard library only)',
    async () => {
      // GOFLAGS=-mod=mod and GOTOOLCHAIN=local: no network, and no other Go than this machine's.
      const result = await run(
        'go',
        ['test', '-count=1', '-v', './...'],
        path.join(verifiers, 'go'),
        {
          GOTOOLCHAIN: 'local',
          GOFLAGS: '-mod=mod',
          CGO_ENABLED: '0',
        },
        RUNNER_TIMEOUT_MS,
      );
      expect(result.code, result.stdout + result.stderr).toBe(0);
      for (const test of ['TestConformanceParseKey', 'TestConformanceVerify', 'TestConformanceDocuments'])
        expect(result.stdout).toMatch(new RegExp(`--- PASS: ${test} `));
      expect(result.stdout).not.toMatch(/--- (FAIL|SKIP)/);
    },
    RUNNER_TIMEOUT_MS,
  );

  it(
    'Python: python3 -m unittest in verifiers/python (standard library only)',
    async () => {
      // -X dev -W error: warnings (an unclosed file, a deprecated call) fail the run.
      const result = await run(
        'python3',
        ['-X', 'dev', '-W', 'error', '-m', 'unittest', '-v'],
        path.join(verifiers, 'python'),
        {
          PYTHONDONTWRITEBYTECODE: '1',
        },
        RUNNER_TIMEOUT_MS,
      );
      const output = result.stdout + result.stderr;
      expect(result.code, output).toBe(0);
      for (const test of ['test_parse_cases', 'test_verify_cases', 'test_document_cases'])
        expect(output).toMatch(
          new RegExp(`${test} \\(tests\\.test_conformance\\.[A-Za-z]+\\.${test}\\) \\.\\.\\. ok`),
        );
      expect(output).toMatch(/\nOK\n/);
      expect(output).not.toMatch(/skipped/);
    },
    RUNNER_TIMEOUT_MS,
  );
});
