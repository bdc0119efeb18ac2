#!/usr/bin/env node
// The keyrotor operator: wiring, signals and graceful shutdown. Everything else lives in modules.
import { OptionsError, USAGE, parseOptions } from './cli/options.ts';
import { Controller } from './controller/controller.ts';
import { generateKey } from './keys/format.ts';
import { loadKubeConfig } from './kube/client.ts';
import { errorFields, safeErrorMessage } from './kube/errors.ts';
import { LeaderElector } from './kube/leader-election.ts';
import { exitOnUnexpectedErrors, fatalLine, stderrLine } from './cli/fatal.ts';
import { createLogger } from './observability/logger.ts';
import { MetricsAuth } from './kube/metrics-auth.ts';
import { startServer } from './observability/server.ts';

async function main(): Promise<number> {
  let options;
  try {
    options = parseOptions(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof OptionsError)) throw error;
    process.stderr.write(stderrLine(error.message));
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  const logger = createLogger({ level: options.logLevel });
  let kc;
  try {
    kc = loadKubeConfig(options.kubeconfig);
  } catch (error) {
    // Never the error itself: js-yaml quotes the source around a syntax error, token and all.
    logger.fatal({ error: { message: safeErrorMessage(error) } }, 'could not load a kubeconfig');
    return 1;
  }
  const stopping = new AbortController();
  const election = options.leaderElection;
  let lostLeadership: string | undefined;
  const elector =
    election === undefined
      ? undefined
      : new LeaderElector({
          kc,
          logger,
          namespace: election.namespace,
          name: election.name,
          identity: options.instance,
          timings: election.timings,
          onStartedLeading: () => {
            controller.lead();
          },
          onStoppedLeading: (reason) => {
            // As controller-runtime does: a replica that lost the Lease exits, and its Pod restarts as a standby.
            if (reason === 'released' || stopping.signal.aborted) return;
            lostLeadership = reason;
            stopping.abort();
          },
          onRequest: (method) => {
            controller.metrics.apiRequests.inc({ method });
          },
        });
  const controller = new Controller({
    kc,
    logger,
    namespaces: options.namespaces,
    concurrency: options.concurrency,
    instance: options.instance,
    qps: options.qps,
    manageReaders: options.manageReaders,
    manageWorkloads: options.manageWorkloads,
    burst: options.burst,
    decideConfig: {
      generateKey,
      rotationJitterMs: options.rotationJitterMs,
      requireEnvironmentLabel: options.requireEnvironmentLabel === true,
      allowedReplicatorKeys: options.allowedReplicatorKeys,
    },
    minRotationIntervalMs: options.minRotationIntervalMs,
    verifierBatchMs: options.verifierBatchMs,
    sealSecret: options.sealSecret,
    ...(elector ? { writeBudgetMs: () => elector.writeBudgetMs() } : {}),
  });

  const stopped = new Promise<void>((resolve) => {
    stopping.signal.addEventListener('abort', () => {
      resolve();
    });
    const stop = (signal: NodeJS.Signals) => {
      if (stopping.signal.aborted) return;
      logger.info({ signal }, 'stopping: finishing reconciles in flight');
      stopping.abort();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    // SIGHUP: relist everything from the API server and look at every ApiKey again.
    process.on('SIGHUP', () => {
      controller.relist().catch((error: unknown) => {
        logger.warn({ error: errorFields(error) }, 'relist failed');
      });
    });
  });

  logger.info(
    {
      server: kc.getCurrentCluster()?.server,
      namespaces: options.namespaces,
      concurrency: options.concurrency,
      leaderElection: election && { lease: `${election.namespace}/${election.name}`, ...election.timings },
    },
    'keyrotor starting',
  );
  const metricsAuth = options.metricsAuth
    ? new MetricsAuth({ kc, logger, registry: controller.metrics.registry })
    : undefined;
  const server =
    options.serve === undefined
      ? undefined
      : await startServer({
          ...options.serve,
          metrics: controller.metrics,
          ready: () => controller.ready,
          logger,
          // --metrics-auth: each scrape's bearer token is reviewed by the API server.
          ...(metricsAuth === undefined ? {} : { authorizeMetrics: metricsAuth.authorize.bind(metricsAuth) }),
        });
  // Standbys start their caches too, so a failover does not wait for a full list.
  const electing = elector?.run(stopping.signal);
  try {
    await controller.start(stopping.signal);
    logger.info(
      elector ? 'keyrotor running; caches warm, leading once it holds the lease' : 'keyrotor running',
    );
  } catch (error) {
    if (!stopping.signal.aborted) throw error;
  }
  await stopped;
  await electing;
  // Within the Pod's termination grace period (30 s by default), whatever is still in flight.
  const deadline = new Promise<'timeout'>((resolve) =>
    setTimeout(() => {
      resolve('timeout');
    }, STOP_DEADLINE_MS),
  );
  const outcome = await Promise.race([controller.stop().then(() => 'stopped' as const), deadline]);
  // Only after the last write: a standby may write as soon as the Lease is released.
  await elector?.release();
  server?.close();
  if (outcome === 'timeout')
    logger.warn({ deadlineMs: STOP_DEADLINE_MS }, 'stopping took too long; exiting anyway');
  else logger.info('keyrotor stopped');
  await new Promise<void>((resolve) => {
    logger.flush(() => {
      resolve();
    });
  });
  if (lostLeadership !== undefined) {
    process.stderr.write(stderrLine(`lost leadership: ${lostLeadership}`));
    return 1;
  }
  return 0;
}

const STOP_DEADLINE_MS = 25_000;

// Whatever fails unexpectedly is printed as one scrubbed line (observability/fatal.ts): never a client
// exception's response, nor the source a parser quotes.
exitOnUnexpectedErrors(process);

// Exit explicitly: an idle keep-alive connection of the HTTP client must not keep a stopped operator alive.
process.exit(
  await main().catch((error: unknown) => {
    process.stderr.write(fatalLine(undefined, error));
    return 1;
  }),
);
