import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['operator/**/*.test.ts', 'test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          // test/security: the adversarial suite, acting with a tenant's token (test/support/tenant.ts).
          include: ['test/integration/**/*.test.ts', 'test/security/**/*.test.ts'],
          // One control plane for the whole run; tests isolate by namespace.
          globalSetup: ['test/cluster/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          // keyrotor/verify as services use it: compiled once per run (tsc -p tsconfig.build.json into a
          // temporary folder, a few seconds), imported by name from outside the repository, and the
          // example API that does so.
          name: 'package',
          include: ['test/package/**/*.test.ts'],
          globalSetup: ['test/package/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          // Each file stalls, kills and restarts a control plane of its own: one file at a time, so
          // timings are not skewed by another file's load on the two cores.
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
