import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

import { CoreV1Api, KubeConfig, VersionApi } from '@kubernetes/client-node';
import { dump } from 'js-yaml';

import { waitFor } from '../support/wait.ts';
import { writePki, type Pki } from './pki.ts';
import {
  commandLine,
  isAlive,
  peakRssMiB,
  startProcess,
  stopProcess,
  tail,
  type ComponentProcess,
} from './processes.ts';

const run = promisify(execFile);

/** Seconds each component gets to become ready; generous because both cores may be busy. */
const READY_TIMEOUT_MS = 60_000;
const STATE_FILE = 'control-plane.json';

export interface ControlPlaneOptions {
  /** Folder with etcd, kube-apiserver, kube-controller-manager and kubectl (test/cluster/build.sh). */
  readonly binDir: string;
  /** Folder for certificates, kubeconfigs, logs and the state file; created if missing. */
  readonly runDir: string;
  /** Manifests applied before kube-controller-manager starts, so its garbage collector knows their kinds. */
  readonly crdDir?: string;
  /** Leave the components running after this process exits (cluster:up). */
  readonly detached: boolean;
  /**
   * Write the API server's audit log of every write (Metadata level, JSON lines) here: fault tests read
   * it to tell which replica wrote what, and when, by the API server's own clock.
   */
  readonly auditLogFile?: string;
  /**
   * Audit every request (reads and watches too, still Metadata level), not only writes: the benchmarks
   * count each client's requests from the log. Components of the control plane itself are left out.
   */
  readonly auditAllRequests?: boolean;
  readonly log: (message: string) => void;
}

/** What another process needs to find and stop a control plane: written to `<runDir>/control-plane.json`. */
export interface ControlPlaneState {
  readonly ownerPid: number;
  readonly runDir: string;
  readonly etcdDataDir: string;
  readonly server: string;
  readonly kubeconfig: string;
  readonly components: readonly ComponentProcess[];
}

export interface StopReport {
  /** Peak resident memory of each component, in MiB, read just before it was stopped. */
  readonly peakRssMiB: Record<string, number | undefined>;
}

export interface ControlPlane extends ControlPlaneState {
  readonly adminToken: string;
  readonly caCert: string;
  readonly kubectl: string;
  /** etcd's client URL (plain HTTP on loopback), e.g. for its v3 JSON gateway. */
  readonly etcdUrl: string;
  /**
   * SIGKILLs kube-apiserver, runs `whileDown` (e.g. an etcd compaction), and starts it again with the
   * same flags; resolves once it is ready.
   */
  restartApiServer(whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<StopReport>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

function get(url: string, ca?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http;
    const request = client.get(url, { ca, timeout: 5_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, body });
      });
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on('error', reject);
  });
}

function kubeconfigYaml(server: string, caCert: Buffer, user: string, token: string): string {
  return dump({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'keyrotor-local',
        cluster: { server, 'certificate-authority-data': caCert.toString('base64') },
      },
    ],
    users: [{ name: user, user: { token } }],
    contexts: [
      { name: 'keyrotor-local', context: { cluster: 'keyrotor-local', user, namespace: 'default' } },
    ],
    'current-context': 'keyrotor-local',
  });
}

/** Waits until `probe` passes, failing at once (with the component's log) if the component dies. */
async function waitReady(
  component: ComponentProcess,
  what: string,
  probe: () => Promise<boolean>,
): Promise<void> {
  await waitFor(
    async () => {
      if (!(await isAlive(component.pid))) {
        throw new Error(`${component.name} exited before it was ready`);
      }
      return (await probe()) ? true : undefined;
    },
    { description: `${component.name}: ${what}`, timeoutMs: READY_TIMEOUT_MS, intervalMs: 200 },
  ).catch(async (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(
      `${message}\n--- last lines of ${component.logFile} ---\n${await tail(component.logFile)}`,
    );
  });
}

async function stopComponents(components: readonly ComponentProcess[]): Promise<StopReport> {
  const report: Record<string, number | undefined> = {};
  // Reverse start order: controller manager, API server, etcd.
  for (const component of [...components].reverse()) {
    report[component.name] = await peakRssMiB(component.pid);
    await stopProcess(component.pid);
  }
  return { peakRssMiB: report };
}

/**
 * Stops the components recorded in a run folder's state file and deletes the folder. The recorded
 * pids are only signalled while their command line still names the run folder, so a pid reused by
 * an unrelated process is left alone.
 */
export async function stopRecorded(runDir: string): Promise<StopReport | undefined> {
  let state: ControlPlaneState;
  try {
    state = JSON.parse(await readFile(path.join(runDir, STATE_FILE), 'utf8')) as ControlPlaneState;
  } catch {
    return undefined;
  }
  const ours: ComponentProcess[] = [];
  for (const component of state.components) {
    const command = await commandLine(component.pid);
    if (command?.includes(state.runDir) || command?.includes(state.etcdDataDir)) ours.push(component);
  }
  const report = await stopComponents(ours);
  await rm(state.etcdDataDir, { recursive: true, force: true });
  await rm(state.runDir, { recursive: true, force: true });
  return report;
}

/**
 * Removes the control planes of earlier test runs whose harness died without tearing down (their
 * owner pid is gone): processes first, then folders.
 */
export async function sweepOrphans(parentDir: string, prefix: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(parentDir);
  } catch {
    return;
  }
  for (const entry of entries.filter((name) => name.startsWith(prefix))) {
    const runDir = path.join(parentDir, entry);
    let ownerPid: number | undefined;
    try {
      ownerPid = (JSON.parse(await readFile(path.join(runDir, STATE_FILE), 'utf8')) as ControlPlaneState)
        .ownerPid;
    } catch {
      ownerPid = undefined;
    }
    if (ownerPid !== undefined && (await isAlive(ownerPid))) continue;
    if (ownerPid === undefined) {
      await rm(runDir, { recursive: true, force: true });
    } else {
      await stopRecorded(runDir);
    }
  }
}

async function applyCrds(kubectl: string, kubeconfig: string, crdDir: string): Promise<void> {
  const files = (await readdir(crdDir)).filter((file) => /\.ya?ml$/.test(file));
  if (files.length === 0) return;
  const args = ['--kubeconfig', kubeconfig];
  await run(kubectl, [...args, 'apply', '--server-side', '--field-manager=keyrotor-test', '-f', crdDir]);
  await run(kubectl, [...args, 'wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
}

/**
 * Proves the garbage collector runs: a ConfigMap owned by another disappears when its owner is
 * deleted. There is no health endpoint to ask, since the controller manager serves no port here.
 */
async function probeGarbageCollector(core: CoreV1Api): Promise<void> {
  const namespace = 'default';
  const owner = await core.createNamespacedConfigMap({
    namespace,
    body: { metadata: { generateName: 'keyrotor-gc-probe-owner-' } },
  });
  const ownerName = owner.metadata?.name ?? '';
  const dependent = await core.createNamespacedConfigMap({
    namespace,
    body: {
      metadata: {
        generateName: 'keyrotor-gc-probe-dependent-',
        ownerReferences: [
          { apiVersion: 'v1', kind: 'ConfigMap', name: ownerName, uid: owner.metadata?.uid ?? '' },
        ],
      },
    },
  });
  await core.deleteNamespacedConfigMap({ namespace, name: ownerName });
  await waitFor(
    async () => {
      try {
        await core.readNamespacedConfigMap({ namespace, name: dependent.metadata?.name ?? '' });
        return undefined;
      } catch (error) {
        if ((error as { code?: number }).code === 404) return true;
        throw error;
      }
    },
    { description: 'the garbage collector to delete an orphaned ConfigMap', timeoutMs: READY_TIMEOUT_MS },
  );
}

/**
 * Writes only, at Metadata level (no bodies: Secrets hold keys), once the response is complete. With
 * `all`, every request of every client but the control plane's own, and a watch also when it starts.
 */
async function writeAuditPolicy(runDir: string, all: boolean): Promise<string> {
  const file = path.join(runDir, 'audit-policy.yaml');
  const rules = all
    ? [
        'omitStages: [RequestReceived]',
        'rules:',
        '  - level: None',
        '    users: [system:kube-controller-manager, system:apiserver]',
        '  - level: Metadata',
      ]
    : [
        'omitStages: [RequestReceived, ResponseStarted]',
        'rules:',
        '  - level: Metadata',
        '    verbs: [create, update, patch, delete, deletecollection]',
        '  - level: None',
      ];
  await writeFile(file, ['apiVersion: audit.k8s.io/v1', 'kind: Policy', ...rules, ''].join('\n'));
  return file;
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const { binDir, runDir, log, detached } = options;
  const bin = (name: string) => path.join(binDir, name);
  const logs = path.join(runDir, 'logs');
  await mkdir(path.join(runDir, 'pki'), { recursive: true });
  await mkdir(logs, { recursive: true });
  // etcd on tmpfs with fsync off: nothing here must survive a reboot, and disk waits dominate otherwise.
  const shm = '/dev/shm';
  const etcdDataDir = existsSync(shm)
    ? path.join(shm, `keyrotor-etcd-${path.basename(runDir).replace(/^\./, '')}`)
    : path.join(runDir, 'etcd');

  const components: ComponentProcess[] = [];
  const state = (server: string, kubeconfig: string): ControlPlaneState => ({
    ownerPid: process.pid,
    runDir,
    etcdDataDir,
    server,
    kubeconfig,
    components,
  });
  const saveState = (server = '', kubeconfig = '') =>
    writeFile(path.join(runDir, STATE_FILE), JSON.stringify(state(server, kubeconfig), null, 2));
  const start = (name: string, args: string[]) => {
    const component = startProcess(name, bin(name), args, {
      logFile: path.join(logs, `${name}.log`),
      detached,
    });
    components.push(component);
    return component;
  };

  try {
    const pki: Pki = await writePki(path.join(runDir, 'pki'));
    const ca = await readFile(pki.caCert);
    const [etcdPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const server = `https://127.0.0.1:${apiPort}`;

    let started = Date.now();
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = start('etcd', [
      '--name=default', `--data-dir=${etcdDataDir}`,
      `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=default=${peerUrl}`, '--unsafe-no-fsync=true', '--log-level=warn',
    ]); // prettier-ignore
    await saveState();
    await waitReady(
      etcd,
      '/health',
      async () => (await get(`${etcdUrl}/health`).catch(() => undefined))?.status === 200,
    );
    log(`etcd ready in ${Date.now() - started} ms`);

    started = Date.now();
    const apiserverArgs = [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1', `--secure-port=${apiPort}`,
      // Without an advertise address the server needs a default route; none is needed on loopback.
      '--advertise-address=127.0.0.1', '--endpoint-reconciler-type=none',
      `--cert-dir=${path.join(runDir, 'apiserver')}`,
      `--tls-cert-file=${pki.servingCert}`, `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.caCert}`, `--token-auth-file=${pki.tokenFile}`,
      '--authorization-mode=Node,RBAC',
      `--service-account-issuer=${server}`,
      `--service-account-key-file=${pki.serviceAccountKey}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true', '--profiling=false', '--v=1',
      ...(options.auditLogFile === undefined ? [] : [
        `--audit-policy-file=${await writeAuditPolicy(runDir, options.auditAllRequests === true)}`,
        `--audit-log-path=${options.auditLogFile}`, '--audit-log-format=json', '--audit-log-mode=blocking',
        // Never rotated: an unset size means 100 MB (lumberjack's default), which a 10,000-key run passes,
        // and bench/audit.ts reads one file as it grows.
        '--audit-log-maxsize=1000000',
      ]),
    ]; // prettier-ignore
    const apiserver = start('kube-apiserver', apiserverArgs);
    await saveState(server);
    await waitReady(
      apiserver,
      '/readyz',
      async () => (await get(`${server}/readyz`, ca).catch(() => undefined))?.status === 200,
    );

    const kubeconfig = path.join(runDir, 'admin.kubeconfig');
    await writeFile(kubeconfig, kubeconfigYaml(server, ca, 'keyrotor-admin', pki.adminToken), {
      mode: 0o600,
    });
    const kcmKubeconfig = path.join(runDir, 'kube-controller-manager.kubeconfig');
    await writeFile(kcmKubeconfig, kubeconfigYaml(server, ca, 'kcm', pki.controllerManagerToken), {
      mode: 0o600,
    });
    await saveState(server, kubeconfig);

    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    await waitReady(apiserver, 'namespace default', async () =>
      core.readNamespace({ name: 'default' }).then(
        () => true,
        () => false,
      ),
    );
    log(`kube-apiserver ready in ${Date.now() - started} ms at ${server}`);

    const kubectl = bin('kubectl');
    if (options.crdDir !== undefined) {
      started = Date.now();
      await applyCrds(kubectl, kubeconfig, options.crdDir);
      log(`CRDs from ${options.crdDir} established in ${Date.now() - started} ms`);
      // keyrotor's own namespace, as an install makes it: its seal key Secret lives there by default.
      await core
        .createNamespace({ body: { metadata: { name: 'keyrotor-system' } } })
        .catch((error: unknown) => {
          if ((error as { code?: number }).code !== 409) throw error;
        });
    }

    started = Date.now();
    const controllerManager = start('kube-controller-manager', [
      `--kubeconfig=${kcmKubeconfig}`,
      '--controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,clusterrole-aggregation-controller',
      '--leader-elect=false', '--secure-port=0', '--v=1',
    ]); // prettier-ignore
    await saveState(server, kubeconfig);
    await waitReady(controllerManager, 'garbage collection', async () => {
      await probeGarbageCollector(core);
      return true;
    });
    log(`kube-controller-manager collecting garbage ${Date.now() - started} ms after start`);

    const version = await kc.makeApiClient(VersionApi).getCode();
    log(`Kubernetes ${version.gitVersion} ready; kubeconfig: ${kubeconfig}`);

    return {
      ...state(server, kubeconfig),
      adminToken: pki.adminToken,
      caCert: pki.caCert,
      kubectl,
      etcdUrl,
      restartApiServer: async (whileDown) => {
        // A crash, not a shutdown: SIGKILL, then the same command line again.
        const index = components.findIndex((component) => component.name === 'kube-apiserver');
        const old = components[index];
        if (old === undefined) throw new Error('no kube-apiserver to restart');
        process.kill(old.pid, 'SIGKILL');
        await waitFor(async () => ((await isAlive(old.pid)) ? undefined : true), {
          description: 'the old kube-apiserver to die',
        });
        components.splice(index, 1);
        await whileDown?.();
        const restarted = start('kube-apiserver', apiserverArgs);
        await saveState(server, kubeconfig);
        await waitReady(
          restarted,
          '/readyz',
          async () => (await get(`${server}/readyz`, ca).catch(() => undefined))?.status === 200,
        );
      },
      stop: async () => {
        const report = await stopComponents(components);
        await rm(etcdDataDir, { recursive: true, force: true });
        await rm(runDir, { recursive: true, force: true });
        return report;
      },
    };
  } catch (error) {
    await stopComponents(components);
    await rm(etcdDataDir, { recursive: true, force: true });
    if (!detached) await rm(runDir, { recursive: true, force: true });
    throw error;
  }
}
