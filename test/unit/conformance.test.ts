// The TypeScript verifier against verifiers/testdata, the cases the Go and Python verifiers pass too
// (test/package/verifiers.test.ts runs theirs). The files are read from disk, as the other languages
// read them, so a change of keyrotor's behaviour fails here until the testdata is written again.
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { parseKey } from '../../operator/src/keys/format.ts';
import { parseVerifierDocument } from '../../operator/src/verify/document.ts';
import { Verifier, type VerifyResult } from '../../operator/src/verify/verifier.ts';
import { TESTDATA_DIR, conformanceFiles } from '../../scripts/conformance.ts';

const read = (name: string) => readFile(path.join(TESTDATA_DIR, name), 'utf8');
const cases = async <T>(name: string) => JSON.parse(await read(name)) as T[];

interface ParseCase {
  key: string;
  result: ReturnType<typeof parseKey>;
}
interface VerifyCase {
  name: string;
  document: string;
  key: string;
  now: string;
  scope?: string;
  expect: VerifyResult;
}
interface DocumentCase {
  document: string;
  error: string;
}

describe('verifiers/testdata', () => {
  it('is what scripts/conformance.ts writes today (npm run verifiers:testdata)', async () => {
    for (const [name, text] of Object.entries(conformanceFiles())) expect(await read(name), name).toBe(text);
  });

  it('has cases of every kind of result, so that no implementation passes by saying one thing', async () => {
    const reasons = new Set((await cases<VerifyCase>('verify-cases.json')).map((test) => test.expect.reason));
    expect([...reasons].sort()).toEqual(['Expired', 'InsufficientScope', 'Malformed', 'Unknown', 'Valid']);
    const parsed = await cases<ParseCase>('parse-cases.json');
    expect(parsed.filter((test) => test.result.ok).length).toBeGreaterThan(3);
    expect(parsed.filter((test) => !test.result.ok).length).toBeGreaterThan(3);
  });
});

describe('the TypeScript verifier passes the conformance cases', () => {
  it('parses keys offline as parse-cases.json says', async () => {
    for (const test of await cases<ParseCase>('parse-cases.json'))
      expect(parseKey(test.key), JSON.stringify(test.key)).toEqual(test.result);
  });

  it('verifies keys as verify-cases.json says', async () => {
    const verifiers = new Map<string, Verifier>();
    for (const test of await cases<VerifyCase>('verify-cases.json')) {
      let verifier = verifiers.get(test.document);
      if (verifier === undefined) {
        verifier = new Verifier(parseVerifierDocument(await read(`documents/${test.document}`)));
        verifiers.set(test.document, verifier);
      }
      const options = {
        now: () => Date.parse(test.now),
        ...(test.scope === undefined ? {} : { scope: test.scope }),
      };
      expect(verifier.verify(test.key, options), test.name).toEqual(test.expect);
    }
  });

  it('refuses the malformed documents with the error document-cases.json names', async () => {
    for (const test of await cases<DocumentCase>('document-cases.json')) {
      const text = await read(`documents/${test.document}`);
      expect(() => parseVerifierDocument(text), test.document).toThrow(test.error);
    }
  });
});
