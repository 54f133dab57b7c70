// What e2e tests share: clients for the testbed's real apiserver, a namespace per test file, polling.
import { randomBytes } from 'node:crypto';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { apiserverMetrics, sumOf } from '../../testbed/apiserver-metrics.ts';

export interface Clients {
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  custom: CustomObjectsApi;
}

export function clients(kubeconfig: string = inject('kubeconfig')): Clients {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
  };
}

export const suffix = () => randomBytes(3).toString('hex');

/** Creates a namespace named after the test file and waits for its default ServiceAccount. */
export async function namespace(c: Clients, prefix: string): Promise<string> {
  const name = `${prefix}-${suffix()}`;
  await c.core.createNamespace({ body: { metadata: { name } } });
  await eventually(`ServiceAccount default in ${name}`, async () => {
    await c.core.readNamespacedServiceAccount({ name: 'default', namespace: name });
  });
  return name;
}

/**
 * Retries `check` until it stops throwing; rethrows its last error, prefixed with `what`, on timeout.
 * Tests assert inside `check`, so a timeout message carries the actual state.
 */
export async function eventually<T>(
  what: string,
  check: () => Promise<T>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await check();
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const detail = last instanceof Error ? last.message : String(last);
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${detail}`);
}

/**
 * The sum of a kube-apiserver metric's samples whose labels include `labels`, read as the testbed's
 * admin: e.g. which admission webhooks it called, and how often.
 */
export async function apiserverMetric(c: Clients, name: string, labels: Record<string, string>): Promise<number> {
  return sumOf(await apiserverMetrics(c.kc), name, labels);
}
