import { describe, expect, it } from 'vitest';

import { OptionsError, parseOptions } from './options.ts';

describe('operator options', () => {
  it('has defaults for everything', () => {
    expect(parseOptions([], { POD_NAME: 'keyrotor-0' })).toEqual({
      kubeconfig: undefined,
      namespaces: [],
      concurrency: 4,
      logLevel: 'info',
      instance: 'keyrotor-0',
      qps: 100,
      burst: 200,
      rotationJitterMs: 0,
      minRotationIntervalMs: 300_000,
      verifierBatchMs: 1_000,
      serve: { host: '0.0.0.0', port: 8080 },
      metricsAuth: true,
      manageReaders: true,
      manageWorkloads: true,
      allowedReplicatorKeys: [],
      sealSecret: { namespace: 'keyrotor-system', name: 'keyrotor-seal' },
      leaderElection: undefined,
    });
    expect(parseOptions(['--no-manage-readers'], {})).toMatchObject({ manageReaders: false });
    expect(parseOptions(['--no-manage-workloads'], {})).toMatchObject({ manageWorkloads: false });
    expect(parseOptions(['--metrics-auth=false'], {})).toMatchObject({ metricsAuth: false });
    expect(parseOptions([], { KEYROTOR_METRICS_AUTH: 'false' })).toMatchObject({ metricsAuth: false });
    expect(parseOptions(['--require-environment-label'], {})).toMatchObject({
      requireEnvironmentLabel: true,
    });
    expect(
      parseOptions(
        ['--allowed-replicator-keys', 'reflector.v1.k8s.emberstack.com/, kubed.appscode.com/sync'],
        {},
      ),
    ).toMatchObject({
      allowedReplicatorKeys: ['reflector.v1.k8s.emberstack.com/', 'kubed.appscode.com/sync'],
    });
    expect(parseOptions([], { POD_NAMESPACE: 'ops' })).toMatchObject({
      sealSecret: { namespace: 'ops', name: 'keyrotor-seal' },
    });
    expect(parseOptions(['--seal-secret', 'vault/seal'], {})).toMatchObject({
      sealSecret: { namespace: 'vault', name: 'seal' },
    });
    expect(() => parseOptions(['--seal-secret', 'no-slash'], {})).toThrow(/--seal-secret/);
  });

  it('reads flags before environment variables', () => {
    const options = parseOptions(
      [
        '--namespaces',
        'a, b',
        '--concurrency',
        '8',
        '--rotation-jitter',
        '5m',
        '--verifier-batch-interval',
        '250ms',
        '--min-rotation-interval',
        '10m',
      ],
      {
        KEYROTOR_MIN_ROTATION_INTERVAL: '1m',
        KEYROTOR_NAMESPACES: 'c',
        KEYROTOR_CONCURRENCY: '2',
        KEYROTOR_LOG_LEVEL: 'debug',
      },
    );
    expect(options).toMatchObject({
      namespaces: ['a', 'b'],
      concurrency: 8,
      logLevel: 'debug',
      rotationJitterMs: 300_000,
      verifierBatchMs: 250,
      minRotationIntervalMs: 600_000,
    });
  });

  it('reads --min-rotation-interval from the environment and the config file too, 0s turning it off', () => {
    const file = (path: string) => {
      if (path !== '/etc/keyrotor/config.yaml') throw new Error(`ENOENT: ${path}`);
      return 'min-rotation-interval: 15m\n';
    };
    expect(parseOptions([], { KEYROTOR_MIN_ROTATION_INTERVAL: '90s' })).toMatchObject({
      minRotationIntervalMs: 90_000,
    });
    expect(parseOptions(['--config', '/etc/keyrotor/config.yaml'], {}, file)).toMatchObject({
      minRotationIntervalMs: 900_000,
    });
    expect(
      parseOptions(['--config', '/etc/keyrotor/config.yaml'], { KEYROTOR_MIN_ROTATION_INTERVAL: '2m' }, file),
    ).toMatchObject({ minRotationIntervalMs: 120_000 });
    expect(parseOptions(['--min-rotation-interval=0s'], {})).toMatchObject({ minRotationIntervalMs: 0 });
    expect(parseOptions(['--min-rotation-interval=1h'], {})).toMatchObject({
      minRotationIntervalMs: 3_600_000,
    });
  });

  it.each([
    [['--concurrency', '0'], '--concurrency: "0" must be a whole number from 1 to 64'],
    [['--concurrency', 'many'], '--concurrency: "many" must be a whole number from 1 to 64'],
    [['--log-level', 'loud'], '--log-level: "loud" must be one of'],
    [['--namespaces', 'Bad_NS'], '--namespaces: "Bad_NS" is not a namespace name'],
    [['--kube-api-qps=0'], '--kube-api-qps: "0" must be a number from 1'],
    [['--rotation-jitter', 'soon'], '--rotation-jitter: "soon" is not a duration'],
    [['--min-rotation-interval', 'often'], '--min-rotation-interval: "often" is not a duration'],
    [['--min-rotation-interval', '1h1s'], '--min-rotation-interval: "1h1s" must be from 0s to 1h'],
    [['--verifier-batch-interval', '5ms'], '--verifier-batch-interval: "5ms" must be from 100ms to 1m'],
    [['--verifier-batch-interval', '2m'], '--verifier-batch-interval: "2m" must be from 100ms to 1m'],
    [['--frobnicate'], "Unknown option '--frobnicate'"],
    [['--bind-address', '8080'], '--bind-address: "8080" must be host:port'],
  ])('refuses %j with a clear message', (argv, message) => {
    expect(() => parseOptions(argv, {})).toThrow(OptionsError);
    expect(() => parseOptions(argv, {})).toThrow(message);
  });

  it("reads leader election options, defaulting the namespace to the Pod's own", () => {
    const files = { '/var/run/secrets/kubernetes.io/serviceaccount/namespace': 'keyrotor-system\n' };
    const read = (path: string) => {
      const text = (files as Record<string, string>)[path];
      if (text === undefined) throw new Error(`ENOENT: ${path}`);
      return text;
    };
    expect(parseOptions(['--leader-elect', '--retry-period=500ms'], {}, read)).toMatchObject({
      leaderElection: {
        namespace: 'keyrotor-system',
        name: 'keyrotor',
        timings: { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 500 },
      },
    });
    expect(
      parseOptions(
        ['--leader-election-namespace', 'ops', '--lease-duration', '30s', '--renew-deadline', '20s'],
        { KEYROTOR_LEADER_ELECT: 'true', KEYROTOR_RETRY_PERIOD: '5s' },
        read,
      ),
    ).toMatchObject({
      leaderElection: {
        namespace: 'ops',
        timings: { leaseDurationMs: 30_000, renewDeadlineMs: 20_000, retryPeriodMs: 5_000 },
      },
    });
  });

  it.each([
    [['--leader-elect'], '--leader-election-namespace: needed outside a cluster'],
    [
      ['--leader-elect', '--leader-election-namespace=ops', '--renew-deadline=20s'],
      'leader election: the lease duration (15s) must be longer than the renew deadline (20s)',
    ],
    [
      ['--leader-elect', '--leader-election-namespace=ops', '--retry-period=now'],
      '--retry-period: "now" is not a duration',
    ],
  ])('refuses leader election options %j with a clear message', (argv, message) => {
    const noFiles = (path: string): string => {
      throw new Error(`ENOENT: ${path}`);
    };
    expect(() => parseOptions(argv, {}, noFiles)).toThrow(message);
  });

  describe('--config', () => {
    const fileOf = (text: string) => (path: string) => {
      if (path !== '/etc/keyrotor/config.yaml') throw new Error(`ENOENT: ${path}`);
      return text;
    };

    it('takes options from a YAML file, below flags and environment variables', () => {
      const read = fileOf(
        'namespaces: [payments, market-data]\nkube-api-qps: 50\nconcurrency: 2\nmanage-readers: false\n',
      );
      expect(
        parseOptions(
          ['--config', '/etc/keyrotor/config.yaml', '--concurrency', '6'],
          { KEYROTOR_KUBE_API_QPS: '70' },
          read,
        ),
      ).toMatchObject({
        namespaces: ['payments', 'market-data'],
        qps: 70,
        concurrency: 6,
        manageReaders: false,
      });
      expect(parseOptions([], { KEYROTOR_CONFIG: '/etc/keyrotor/config.yaml' }, read)).toMatchObject({
        qps: 50,
      });
    });

    it("validates the file's values as it does flags", () => {
      expect(() =>
        parseOptions(['--config', '/etc/keyrotor/config.yaml'], {}, fileOf('concurrency: 100')),
      ).toThrow('--concurrency: "100" must be a whole number from 1 to 64');
    });

    it.each([
      ['kube-api-qsp: 50', 'unknown option "kube-api-qsp"; known: kubeconfig, namespaces'],
      ['- a\n- b', 'must be a mapping of option names to values'],
      ['namespaces: {a: 1}', '"namespaces" must be a value or a list'],
      ['qps: [unclosed', '--config /etc/keyrotor/config.yaml: '],
    ])('refuses a file holding %j', (text, message) => {
      expect(() => parseOptions(['--config', '/etc/keyrotor/config.yaml'], {}, fileOf(text))).toThrow(
        message,
      );
    });

    it('says which file it could not read', () => {
      expect(() => parseOptions(['--config', '/nowhere.yaml'], {}, fileOf(''))).toThrow(
        '--config /nowhere.yaml: ENOENT: /nowhere.yaml',
      );
    });
  });

  it('answers --help', () => {
    expect(parseOptions(['--help'], {})).toBe('help');
  });
});
