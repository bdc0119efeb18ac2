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
      serve: { host: '0.0.0.0', port: 8080 },
      manageReaders: true,
    });
    expect(parseOptions(['--no-manage-readers'], {})).toMatchObject({ manageReaders: false });
  });

  it('reads flags before environment variables', () => {
    const options = parseOptions(['--namespaces', 'a, b', '--concurrency', '8', '--rotation-jitter', '5m'], {
      KEYROTOR_NAMESPACES: 'c',
      KEYROTOR_CONCURRENCY: '2',
      KEYROTOR_LOG_LEVEL: 'debug',
    });
    expect(options).toMatchObject({
      namespaces: ['a', 'b'],
      concurrency: 8,
      logLevel: 'debug',
      rotationJitterMs: 300_000,
    });
  });

  it.each([
    [['--concurrency', '0'], '--concurrency: "0" must be a whole number from 1 to 64'],
    [['--concurrency', 'many'], '--concurrency: "many" must be a whole number from 1 to 64'],
    [['--log-level', 'loud'], '--log-level: "loud" must be one of'],
    [['--namespaces', 'Bad_NS'], '--namespaces: "Bad_NS" is not a namespace name'],
    [['--kube-api-qps=0'], '--kube-api-qps: "0" must be a number from 1'],
    [['--rotation-jitter', 'soon'], '--rotation-jitter: "soon" is not a duration'],
    [['--frobnicate'], "Unknown option '--frobnicate'"],
    [['--bind-address', '8080'], '--bind-address: "8080" must be host:port'],
  ])('refuses %j with a clear message', (argv, message) => {
    expect(() => parseOptions(argv, {})).toThrow(OptionsError);
    expect(() => parseOptions(argv, {})).toThrow(message);
  });

  it('answers --help', () => {
    expect(parseOptions(['--help'], {})).toBe('help');
  });
});
