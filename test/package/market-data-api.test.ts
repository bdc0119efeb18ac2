// examples/market-data-api/server.mjs, run as a user runs it: copied into a service folder whose
// node_modules holds the compiled keyrotor, reading a verifier file laid out as the kubelet mounts a
// Secret, on a free port. Nothing in it is mocked.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { keyId } from '../../operator/src/keys/format.ts';
import { waitFor } from '../support/wait.ts';
import { consumerDir, documentOf, entryFor, HOUR, kubeletWrite, newKey, repoRoot } from './support.ts';

const keys = {
  quotes: newKey(),
  rotatedOut: newKey(),
  expired: newKey(),
  candlesOnly: newKey(),
  staging: newKey('staging'),
  unknown: newKey(),
};
/** A well-formed key with a wrong checksum: most of a real key, so it must not be logged either. */
const badChecksum = `${keys.quotes.slice(0, -1)}${keys.quotes.endsWith('A') ? 'B' : 'A'}`;

const firstDocument = documentOf(
  [
    entryFor(keys.quotes),
    entryFor(keys.rotatedOut, { consumer: { namespace: 'trading', name: 'old' } }),
    entryFor(keys.expired, {
      notBefore: new Date(Date.now() - 2 * HOUR).toISOString(),
      notAfter: new Date(Date.now() - HOUR).toISOString(),
    }),
    entryFor(keys.candlesOnly, { scopes: ['candles:read'] }),
    entryFor(keys.staging, { environment: 'staging' }),
  ],
  1,
);

describe('examples/market-data-api', () => {
  let dir: string;
  let verifierDir: string;
  let child: ChildProcess | undefined;
  let output = '';
  const lines: Record<string, unknown>[] = [];
  let url = '';

  const get = async (route: string, headers: Record<string, string> = {}) => {
    const response = await fetch(`${url}${route}`, { headers });
    return {
      status: response.status,
      body: (await response.json()) as Record<string, unknown>,
      headers: response.headers,
    };
  };
  const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
  const requestLines = () => lines.filter((line) => line.msg === 'request');

  beforeAll(async () => {
    dir = await consumerDir();
    verifierDir = path.join(dir, 'verifier');
    await mkdir(verifierDir);
    await copyFile(path.join(repoRoot, 'examples/market-data-api/server.mjs'), path.join(dir, 'server.mjs'));
    // Started before the Secret's document is there: alive, not ready, until it is.
    // The parent-death signal makes sure the server does not outlive the test run.
    child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', process.execPath, 'server.mjs'], {
      cwd: dir,
      env: {
        ...process.env,
        PORT: '0',
        VERIFIER_PATH: path.join(verifierDir, 'verifier.json'),
        API_ENVIRONMENT: 'production',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    if (child.stdout === null) throw new Error('no stdout');
    createInterface(child.stdout).on('line', (line) => {
      output += `${line}\n`;
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ msg: 'not JSON', line }); // fails the log assertions, not the worker
      }
    });
    const port = await waitFor(
      () => {
        if (child?.exitCode !== null) throw new Error(`the server exited: ${output}`);
        return lines.find((line) => line.msg === 'listening')?.port as number | undefined;
      },
      { description: 'the server to listen', timeoutMs: 20_000 },
    );
    url = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    child?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('is alive but not ready until the verifier document is there, and refuses requests till then', async () => {
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/readyz')).status).toBe(503);
    expect((await get('/v1/prices', bearer(keys.quotes))).status).toBe(503);
    await kubeletWrite(verifierDir, firstDocument);
    await waitFor(async () => ((await get('/readyz')).status === 200 ? true : undefined), {
      description: 'the server to load the document',
      timeoutMs: 20_000,
    });
  });

  it('answers 200 for a valid key with the scope, by Authorization: Bearer or X-Api-Key', async () => {
    expect(await get('/v1/prices', bearer(keys.quotes))).toMatchObject({
      status: 200,
      body: { symbol: 'EURUSD' },
    });
    expect((await get('/v1/candles', bearer(keys.quotes))).status).toBe(200);
    expect((await get('/v1/candles', { 'x-api-key': keys.candlesOnly })).status).toBe(200);
    expect((await get('/v1/prices', bearer(keys.rotatedOut))).status).toBe(200);
  });

  it('answers 401 for a missing, malformed, unknown, expired or other-environment key', async () => {
    for (const [headers, reason] of [
      [{}, 'Missing'],
      [bearer('not-a-key'), 'Malformed'],
      [bearer(badChecksum), 'Malformed'],
      [{ authorization: `Basic ${keys.quotes}` }, 'Malformed'],
      [bearer(keys.unknown), 'Unknown'],
      [bearer(keys.expired), 'Expired'],
      [bearer(keys.staging), 'WrongEnvironment'],
    ] as const) {
      const response = await get('/v1/prices', headers);
      expect({ status: response.status, body: response.body }).toEqual({
        status: 401,
        body: { error: reason },
      });
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm="market-data"/);
    }
  });

  it('answers 403 when the key lacks the scope the route needs', async () => {
    const response = await get('/v1/prices', { 'x-api-key': keys.candlesOnly });
    expect({ status: response.status, body: response.body }).toEqual({
      status: 403,
      body: { error: 'InsufficientScope' },
    });
    expect(response.headers.get('www-authenticate')).toContain('scope="prices:read"');
  });

  it('logs one JSON line per request, naming the key by keyId and consumer', async () => {
    // Keys where they do not belong, which the log must not repeat either.
    expect((await get(`/v1/prices?api_key=${keys.quotes}`, bearer(keys.quotes))).status).toBe(200);
    expect((await get(`/${keys.quotes}`, bearer(keys.quotes))).status).toBe(404);
    await waitFor(() => (requestLines().length >= 15 ? true : undefined), {
      description: 'a log line for every request so far',
      timeoutMs: 5_000,
    });
    expect(requestLines()).toContainEqual(
      expect.objectContaining({
        path: '/v1/prices',
        status: 200,
        reason: 'Valid',
        keyId: keyId(keys.quotes),
        consumer: 'trading/quotes',
      }),
    );
    expect(requestLines()).toContainEqual(
      expect.objectContaining({ status: 401, reason: 'Unknown', keyId: keyId(keys.unknown) }),
    );
    expect(requestLines()).toContainEqual(
      expect.objectContaining({ status: 403, reason: 'InsufficientScope', keyId: keyId(keys.candlesOnly) }),
    );
  });

  it('follows the kubelet swapping the mounted document: a key dropped from it is refused', async () => {
    const second = documentOf(
      firstDocument.keys.filter((entry) => entry.keyId !== keyId(keys.rotatedOut)),
      2,
    );
    await kubeletWrite(verifierDir, second);
    // followVerifier watches the folder and polls every 10 s besides; the deadline allows for the poll.
    await waitFor(
      async () => ((await get('/v1/prices', bearer(keys.rotatedOut))).status === 401 ? true : undefined),
      {
        description: 'the dropped key to be refused',
        timeoutMs: 20_000,
      },
    );
    expect((await get('/v1/prices', bearer(keys.quotes))).status).toBe(200);
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'verifier reloaded', revision: 2 }));
  });

  it('never writes a key to its output', () => {
    expect(requestLines().length).toBeGreaterThan(15);
    for (const key of [...Object.values(keys), badChecksum]) {
      expect(output).not.toContain(key);
      expect(output).not.toContain(key.slice(8, 40)); // nor a telling part of one
    }
  });

  it('stops on SIGTERM with exit code 0', async () => {
    const exited = new Promise<number | null>((resolve) => child?.once('exit', resolve));
    child?.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
