// A describe block's setting for adversarial tests: a namespace of its own, one operator watching it,
// and a tenant with its own token there (created before every test of the block, removed after).
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll } from 'vitest';

import type { ControllerOptions } from '../../operator/src/controller/controller.ts';
import { adminKubeConfig, createTestNamespace } from './kube.ts';
import { startOperator, type TestOperator } from './operator.ts';
import { createTenant, type Tenant } from './tenant.ts';

export interface TenantSuite {
  readonly admin: KubeConfig;
  readonly namespace: string;
  readonly operator: TestOperator;
  readonly tenant: Tenant;
}

export function tenantSuite(
  prefix: string,
  options: { readonly operator?: Partial<ControllerOptions>; readonly before?: () => Promise<void> } = {},
): TenantSuite {
  const admin = adminKubeConfig();
  let state: (Omit<TenantSuite, 'admin'> & { remove: () => Promise<void> }) | undefined;
  const ready = () => {
    if (state === undefined) throw new Error(`the ${prefix} suite is used before its beforeAll ran`);
    return state;
  };
  beforeAll(async () => {
    const { name: namespace, remove } = await createTestNamespace(admin, prefix);
    let operator: TestOperator | undefined;
    try {
      operator = await startOperator(admin, namespace, options.operator);
      state = { namespace, operator, tenant: await createTenant(admin, namespace), remove };
    } catch (error) {
      await operator?.stop();
      await remove();
      throw error;
    }
    await options.before?.();
  });
  afterAll(async () => {
    await state?.operator.stop();
    await state?.remove();
  });
  return {
    admin,
    get namespace() {
      return ready().namespace;
    },
    get operator() {
      return ready().operator;
    },
    get tenant() {
      return ready().tenant;
    },
  };
}
