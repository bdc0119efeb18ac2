// Writes verifiers/testdata/: the verifier documents and the cases every verifier (TypeScript, Go,
// Python) must pass. Keys are made by keyrotor's own formatKey from fixed bytes and the expected results
// are what keyrotor's own parseKey, parseVerifierDocument and Verifier say, so the other languages are
// held to this one. Run `npm run verifiers:testdata` after changing the key format or the verifier;
// test/unit/conformance.test.ts fails while the files on disk differ from what this writes.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import type { Environment } from '../operator/src/api/types.ts';
import { formatKey, keyHash, parseKey } from '../operator/src/keys/format.ts';
import {
  VERIFIER_API_VERSION,
  parseVerifierDocument,
  type VerifierDocument,
  type VerifierEntry,
} from '../operator/src/verify/document.ts';
import { verifierEntry } from '../operator/src/verify/entry.testing.ts';
import { Verifier } from '../operator/src/verify/verifier.ts';

export const TESTDATA_DIR = path.resolve(import.meta.dirname, '../verifiers/testdata');

/** A key from fixed bytes: the same on every run, never issued to anyone. */
function testKey(name: string, environment: Environment = 'production', bits = 256, prefix = 'kr'): string {
  let bytes = Buffer.alloc(0);
  for (let round = 0; bytes.length < bits / 8; round++)
    bytes = Buffer.concat([bytes, createHash('sha256').update(`conformance/${name}/${round}`).digest()]);
  return formatKey({ prefix, environment, bits }, bytes.subarray(0, bits / 8));
}

/** The clock of every case: a document's times are around it. */
const NOW = Date.parse('2026-12-01T12:00:00.000Z');
const HOUR = 3_600_000;
const at = (offsetMs: number) => new Date(NOW + offsetMs).toISOString();

/** A listed key, valid from an hour before the cases' clock to an hour after it, unless overridden. */
const entry = (key: string, overrides: Partial<VerifierEntry> = {}): VerifierEntry =>
  verifierEntry(key, NOW, { scopes: ['prices:read'], ...overrides });

const keys = {
  current: testKey('current'),
  previous: testKey('previous'),
  wildcard: testKey('wildcard'),
  everything: testKey('everything'),
  exact: testKey('exact'),
  notYet: testKey('not-yet'),
  expired: testKey('expired'),
  staging: testKey('staging', 'staging', 128, 'shop'),
  long: testKey('long', 'development', 512),
  unlisted: testKey('unlisted'),
};

/** The document most cases are checked against: what keyrotor writes for one issuer. */
const issuerDocument: VerifierDocument = {
  apiVersion: VERIFIER_API_VERSION,
  issuer: 'market-data/prices',
  revision: 42,
  keys: [
    entry(keys.current, { notBefore: at(-HOUR), notAfter: at(HOUR) }),
    // The previous key in its grace period: valid until the grace ends, like any other entry.
    entry(keys.previous, { notBefore: at(-2 * HOUR), notAfter: at(10 * 60_000) }),
    entry(keys.wildcard, { scopes: ['prices:*'], consumer: { namespace: 'trading', name: 'wild' } }),
    entry(keys.everything, { scopes: ['*'], consumer: { namespace: 'ops', name: 'admin' } }),
    entry(keys.exact, { scopes: ['prices:read', 'orders:write'] }),
    entry(keys.notYet, { notBefore: at(HOUR), notAfter: at(2 * HOUR) }),
    entry(keys.expired, { notBefore: at(-2 * HOUR), notAfter: at(-HOUR) }),
    // Times with an offset and no fraction are RFC 3339 too: readers must take them.
    entry(keys.staging, {
      environment: 'staging',
      scopes: [],
      notBefore: '2026-12-01T12:30:00+01:00',
      notAfter: '2026-12-01T13:30:00+01:00',
    }),
    entry(keys.long, { environment: 'development', scopes: ['reports:read'] }),
  ],
};

/** A field a reader does not know is ignored (a later keyrotor may add one). */
const extraFields = {
  ...issuerDocument,
  note: 'written by a later keyrotor',
  keys: issuerDocument.keys.map((listed) => ({ ...listed, labels: { team: 'quant' } })),
};

const valid = (document: VerifierDocument) => JSON.stringify(document, null, 2);
const withKeys = (...changed: unknown[]) => JSON.stringify({ ...issuerDocument, keys: changed }, null, 2);
const first = issuerDocument.keys[0] as VerifierEntry;

/** Documents a verifier must refuse whole, each for the reason its name says. */
const malformed: Record<string, string> = {
  'not-json': '{"apiVersion": "keyrotor.dev/verifier/v1",',
  'not-an-object': '[]',
  'wrong-api-version': JSON.stringify({ ...issuerDocument, apiVersion: 'keyrotor.dev/verifier/v9' }),
  'issuer-not-a-string': JSON.stringify({ ...issuerDocument, issuer: 7 }),
  'revision-not-whole': JSON.stringify({ ...issuerDocument, revision: 1.5 }),
  'keys-not-a-list': JSON.stringify({ ...issuerDocument, keys: {} }),
  'entry-not-an-object': withKeys(first, 'kr_live_x'),
  'sha256-uppercase': withKeys({ ...first, sha256: first.sha256.toUpperCase() }),
  'sha256-short': withKeys({ ...first, sha256: first.sha256.slice(0, 63) }),
  'key-id-mismatch': withKeys({ ...first, keyId: '0000000000000000' }),
  'scopes-not-strings': withKeys({ ...first, scopes: ['prices:read', 3] }),
  'environment-missing': withKeys({ ...first, environment: undefined }),
  'not-before-no-zone': withKeys({ ...first, notBefore: '2026-12-01T11:00:00' }),
  'not-after-date-only': withKeys({ ...first, notAfter: '2026-12-01' }),
  'not-after-before-not-before': withKeys({ ...first, notBefore: at(HOUR), notAfter: at(-HOUR) }),
  'window-empty': withKeys({ ...first, notBefore: at(0), notAfter: at(0) }),
  'consumer-missing-name': withKeys({ ...first, consumer: { namespace: 'trading' } }),
  'key-listed-twice': withKeys(first, { ...first, scopes: ['*'] }),
};

interface VerifyCase {
  readonly name: string;
  readonly document: string;
  readonly key: string;
  /** RFC 3339, the clock at the call. */
  readonly now: string;
  /** Omitted: no scope is required. */
  readonly scope?: string;
}

const verifyCases: VerifyCase[] = [
  ['a current key, no scope asked', keys.current],
  ['a current key with its scope', keys.current, 'prices:read'],
  ['a current key without the scope asked', keys.current, 'prices:write'],
  ['scopes are case-sensitive', keys.current, 'Prices:read'],
  ['a previous key in its grace period', keys.previous, 'prices:read'],
  ['a previous key after its grace period', keys.previous, 'prices:read', at(10 * 60_000)],
  ['a previous key a millisecond before its grace ends', keys.previous, undefined, at(10 * 60_000 - 1)],
  ['a wildcard covers a scope with its prefix', keys.wildcard, 'prices:read'],
  ['a wildcard covers its bare prefix', keys.wildcard, 'prices:'],
  ['a wildcard does not cover another prefix', keys.wildcard, 'orders:read'],
  ['a wildcard is not a prefix of a shorter scope', keys.wildcard, 'prices'],
  ['star covers every scope', keys.everything, 'anything:at:all'],
  ['star covers the empty scope', keys.everything, ''],
  ['the empty scope is a scope, not "none asked"', keys.current, ''],
  ['one of several scopes', keys.exact, 'orders:write'],
  ['a key before its notBefore', keys.notYet],
  ['a key at its notBefore exactly', keys.notYet, undefined, at(HOUR)],
  ['a key at its notAfter exactly', keys.current, undefined, at(HOUR)],
  ['a key past its notAfter', keys.expired, 'prices:read'],
  ['an expired key is Expired even without the scope', keys.expired, 'orders:delete'],
  ['a key not yet valid by offset times', keys.staging, undefined, '2026-12-01T11:29:59.999Z'],
  ['a key valid by offset times', keys.staging, undefined, '2026-12-01T11:30:00.000Z'],
  ['a key with no scopes asked for one', keys.staging, 'prices:read', '2026-12-01T11:45:00.000Z'],
  ['a 512-bit key', keys.long, 'reports:read'],
  ['a well-formed key that is not listed', keys.unlisted],
  ['a listed key with one character changed', keys.current.slice(0, -1) + flip(keys.current.slice(-1))],
  ['a listed key with a character added', `${keys.current}a`],
  ['a listed key in upper case', keys.current.toUpperCase()],
  ['a listed key with a space around it', ` ${keys.current}`],
  ['the empty string', ''],
  ['a key hash instead of a key', keyHash(keys.current)],
].map(([name, key, scope, now]) => ({
  name: name as string,
  document: 'issuer.json',
  key: key as string,
  now: now ?? at(0),
  ...(scope === undefined ? {} : { scope }),
}));
verifyCases.push(
  {
    name: 'a document with fields a reader does not know',
    document: 'extra-fields.json',
    key: keys.current,
    now: at(0),
    scope: 'prices:read',
  },
  { name: 'a document with no keys', document: 'empty.json', key: keys.current, now: at(0) },
);

function flip(character: string): string {
  return character === 'a' ? 'b' : 'a';
}

const parseCases = [
  keys.current,
  keys.staging,
  keys.long,
  testKey('test-env', 'test', 192, 'pay2'),
  testKey('dev-env', 'development', 128, 'ab'),
  keys.current.slice(0, -1) + flip(keys.current.slice(-1)),
  keys.current.slice(0, -7) + flip(keys.current.slice(-7, -6)) + keys.current.slice(-6),
  keys.current.slice(0, 12) + keys.current.slice(13),
  keys.current.replace('_live_', '_prod_'),
  keys.current.replace(/^kr_/, 'Kr_'),
  keys.current.replace(/^kr_/, 'k_'),
  keys.current.replace(/^kr_/, 'abcdefghijklm_'),
  keys.current.replace(/^kr_/, '1kr_'),
  `${keys.current}\n`,
  keys.current.replace('_live_', '-live-'),
  'kr_live_',
  '',
].map((key) => ({ key, result: parseKey(key) }));

/** Every file of verifiers/testdata, by path inside it. */
export function conformanceFiles(): Record<string, string> {
  const documents: Record<string, string> = {
    'issuer.json': valid(issuerDocument),
    'extra-fields.json': JSON.stringify(extraFields, null, 2),
    'empty.json': valid({ ...issuerDocument, revision: 1, keys: [] }),
  };
  const verifiers = new Map(
    Object.entries(documents).map(([name, text]) => [name, new Verifier(parseVerifierDocument(text))]),
  );
  const verify = verifyCases.map((test) => {
    const verifier = verifiers.get(test.document);
    if (verifier === undefined) throw new Error(`no document ${test.document}`);
    const options = {
      now: () => Date.parse(test.now),
      ...(test.scope === undefined ? {} : { scope: test.scope }),
    };
    return { ...test, expect: verifier.verify(test.key, options) };
  });
  const refused = Object.entries(malformed).map(([name, text]) => {
    try {
      parseVerifierDocument(text);
    } catch (error) {
      const message = (error as Error).message;
      // JSON parsers word their errors differently: only keyrotor's own part is held to.
      return {
        document: `malformed/${name}.json`,
        error: message.startsWith('not JSON') ? 'not JSON' : message,
      };
    }
    throw new Error(`malformed/${name}.json parses`);
  });
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  return {
    ...Object.fromEntries(
      Object.entries(documents).map(([name, text]) => [`documents/${name}`, `${text}\n`]),
    ),
    ...Object.fromEntries(
      Object.entries(malformed).map(([name, text]) => [`documents/malformed/${name}.json`, `${text}\n`]),
    ),
    'parse-cases.json': json(parseCases),
    'verify-cases.json': json(verify),
    'document-cases.json': json(refused),
  };
}

if (process.argv[1] === import.meta.filename) {
  for (const [name, text] of Object.entries(conformanceFiles())) {
    const file = path.join(TESTDATA_DIR, name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
  }
  process.stderr.write(`wrote ${TESTDATA_DIR}\n`);
}
