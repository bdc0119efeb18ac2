// An API that checks keyrotor keys without holding any: every request's key is verified against the
// verifier document keyrotor keeps for the market-data ApiKeyIssuer (SHA-256 hashes, scopes, validity),
// mounted from a Secret and followed as the kubelet updates it. No dependency but keyrotor/verify, which
// imports node: builtins only; copy this file as a starting point.
//
// Environment:
//   VERIFIER_PATH    the mounted document; default /etc/keyrotor/verifier/verifier.json
//   PORT             default 8080; 0 takes a free port (the "listening" log line says which)
//   API_ENVIRONMENT  optional, e.g. production: refuse keys issued for any other environment. One issuer
//                    may list keys of several environments (its spec.environments), and the verifier
//                    document lists them all.
//
// Never log a key, a header or a query string: log the key's keyId (its public fingerprint) instead.
import http from 'node:http';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';

import { followVerifier, keyId } from 'keyrotor/verify';

const VERIFIER_PATH = process.env.VERIFIER_PATH ?? '/etc/keyrotor/verifier/verifier.json';
const PORT = Number(process.env.PORT ?? 8080);
const API_ENVIRONMENT = process.env.API_ENVIRONMENT || undefined;
/** How often to try again while the document cannot be loaded (not there yet, or not valid). */
const RETRY_MS = 1000;

/** Each route needs one scope; a key scope such as prices:* covers prices:read. */
const ROUTES = new Map([
  ['/v1/prices', { scope: 'prices:read', body: () => ({ symbol: 'EURUSD', bid: 1.0842, ask: 1.0844 }) }],
  [
    '/v1/candles',
    {
      scope: 'candles:read',
      body: () => ({
        symbol: 'EURUSD',
        interval: '1m',
        candles: [[1764331200, 1.084, 1.0846, 1.0839, 1.0843]],
      }),
    },
  ],
]);

function log(fields) {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', ...fields })}\n`);
}

/** The presented key: `Authorization: Bearer <key>`, else `X-Api-Key`. '' when a header is unusable. */
function presentedKey(request) {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) return /^Bearer +(\S+) *$/i.exec(authorization)?.[1] ?? '';
  const header = request.headers['x-api-key'];
  return typeof header === 'string' ? header.trim() : undefined;
}

function send(response, status, body, headers = {}) {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  response.end(JSON.stringify(body));
}

let verifier; // undefined until the first document is loaded
let stopping = false;
const stopped = new AbortController();

/** Loads the document, trying again until it can; from then on followVerifier keeps it current. */
async function load() {
  while (!stopping) {
    try {
      const followed = await followVerifier(VERIFIER_PATH, {
        onReload: (revision) => log({ msg: 'verifier reloaded', revision }),
        // The update is not used; the document loaded before stays in force.
        onError: (error) => log({ level: 'warn', msg: 'verifier update not loaded', error: error.message }),
      });
      if (stopping) followed.close();
      else {
        verifier = followed;
        log({ msg: 'verifier loaded', file: VERIFIER_PATH, revision: followed.revision });
      }
      return;
    } catch (error) {
      log({ level: 'warn', msg: 'verifier not loaded yet', file: VERIFIER_PATH, error: error.message });
      await sleep(RETRY_MS, undefined, { signal: stopped.signal }).catch(() => undefined);
    }
  }
}

/** Checks the request's key for `scope`: the status to answer, the reason, and what to log about the key. */
function authorize(request, scope) {
  const presented = presentedKey(request);
  if (presented === undefined) return { status: 401, reason: 'Missing', about: {} };
  const result = verifier.verify(presented, { scope });
  if (result.reason === 'Malformed') return { status: 401, reason: 'Malformed', about: {} };
  // An unknown key is logged by its fingerprint: a client still sending a key that was rotated out shows
  // up with the keyId that the ApiKey's status history lists for it.
  if (result.reason === 'Unknown')
    return { status: 401, reason: 'Unknown', about: { keyId: keyId(presented) } };
  const about = {
    keyId: result.keyId,
    consumer: `${result.consumer.namespace}/${result.consumer.name}`,
    environment: result.environment,
  };
  if (API_ENVIRONMENT !== undefined && result.environment !== API_ENVIRONMENT)
    return { status: 401, reason: 'WrongEnvironment', about };
  if (result.reason === 'Expired') return { status: 401, reason: 'Expired', about };
  if (result.reason === 'InsufficientScope') return { status: 403, reason: 'InsufficientScope', about };
  return { status: 200, reason: 'Valid', about };
}

function challenge(status, reason, scope) {
  if (status === 403) return `Bearer realm="market-data", error="insufficient_scope", scope="${scope}"`;
  return reason === 'Missing'
    ? 'Bearer realm="market-data"'
    : 'Bearer realm="market-data", error="invalid_token"';
}

/** Answers one request; returns what to log about it (nothing for the probes). */
function handle(request, response, url) {
  if (url.pathname === '/healthz') {
    send(response, 200, { status: 'ok' });
    return undefined;
  }
  if (url.pathname === '/readyz') {
    if (verifier === undefined) send(response, 503, { status: 'verifier not loaded' });
    else send(response, 200, { status: 'ok', revision: verifier.revision });
    return undefined;
  }
  const route = ROUTES.get(url.pathname);
  if (route === undefined) {
    send(response, 404, { error: 'NotFound' });
    return {};
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    send(response, 405, { error: 'MethodNotAllowed' }, { allow: 'GET, HEAD' });
    return {};
  }
  if (verifier === undefined) {
    send(response, 503, { error: 'NotReady' }, { 'retry-after': '1' });
    return { reason: 'NotReady' };
  }
  const { status, reason, about } = authorize(request, route.scope);
  if (status === 200) send(response, 200, route.body());
  else
    send(response, status, { error: reason }, { 'www-authenticate': challenge(status, reason, route.scope) });
  return { reason, ...about };
}

const server = http.createServer((request, response) => {
  const started = process.hrtime.bigint();
  const url = URL.parse(request.url ?? '/', 'http://localhost') ?? new URL('http://localhost/invalid');
  let logged;
  try {
    logged = handle(request, response, url);
  } catch (error) {
    logged = { level: 'error', error: error.message };
    if (!response.headersSent) send(response, 500, { error: 'Internal' });
  }
  if (logged === undefined) return;
  log({
    msg: 'request',
    method: request.method,
    // A route's path only: not a query string, nor a path the API does not serve, either of which may
    // hold a key sent where it does not belong.
    path: ROUTES.has(url.pathname) ? url.pathname : '(other)',
    status: response.statusCode,
    ...logged,
    ms: Number(process.hrtime.bigint() - started) / 1e6,
  });
});

function stop(signal) {
  if (stopping) return;
  stopping = true;
  log({ msg: 'stopping', signal });
  stopped.abort();
  verifier?.close();
  // Finishes the requests in flight; idle keep-alive connections are closed at once.
  server.close();
  setTimeout(() => server.closeAllConnections(), 5000).unref();
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

server.listen(PORT, () => {
  log({ msg: 'listening', port: server.address().port, environment: API_ENVIRONMENT ?? 'any' });
});
await load();
