// Kubernetes resource quantities ("500m", "2", "4Gi", "1e3") to numbers: CPU in millicores, the rest in base units.
import type { V1Pod } from '@kubernetes/client-node';
import type { Resources } from './classes.ts';

const SUFFIX: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

export function parseQuantity(q: string | number | undefined): number {
  if (q === undefined) return 0;
  if (typeof q === 'number') return q;
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$/.exec(q.trim());
  const factor = m ? SUFFIX[m[2]!] : undefined;
  if (!m || factor === undefined) throw new Error(`"${q}" is not a Kubernetes quantity`);
  return Number(m[1]) * factor;
}

export const cpuMillis = (q: string | number | undefined) => Math.ceil(parseQuantity(q) * 1000);

export const ZERO: Resources = { cpu: 0, memory: 0, pods: 0 };

export function add(a: Resources, b: Resources): Resources {
  return { cpu: a.cpu + b.cpu, memory: a.memory + b.memory, pods: a.pods + b.pods };
}

export function fits(used: Resources, extra: Resources, capacity: Resources): boolean {
  return (
    used.cpu + extra.cpu <= capacity.cpu &&
    used.memory + extra.memory <= capacity.memory &&
    used.pods + extra.pods <= capacity.pods
  );
}

type Requested = { resources?: { requests?: Record<string, string> }; restartPolicy?: string };

/**
 * What kube-scheduler counts for a pod (component-helpers' PodRequests): its containers plus its
 * sidecars (init containers with restartPolicy Always, which run beside them), or, if larger, an init
 * container with the sidecars started before it; pod-level requests (spec.resources) instead where
 * set; plus overhead. Counting less than the scheduler does would pin a pod to a node the scheduler
 * then refuses it, and on a Class-isolation node keep refusing every pod ipp sends after it.
 */
export function podRequests(pod: V1Pod): Resources {
  const of = (c: Requested) => {
    const r = c.resources?.requests ?? {};
    return { cpu: cpuMillis(r.cpu), memory: parseQuantity(r.memory) };
  };
  const add = (a: { cpu: number; memory: number }, b: { cpu: number; memory: number }) => ({
    cpu: a.cpu + b.cpu,
    memory: a.memory + b.memory,
  });
  let running = { cpu: 0, memory: 0 };
  for (const c of (pod.spec?.containers ?? []) as Requested[]) running = add(running, of(c));
  let sidecars = { cpu: 0, memory: 0 };
  let init = { cpu: 0, memory: 0 };
  for (const c of (pod.spec?.initContainers ?? []) as Requested[]) {
    if (c.restartPolicy === 'Always') {
      running = add(running, of(c));
      sidecars = add(sidecars, of(c));
      init = { cpu: Math.max(init.cpu, sidecars.cpu), memory: Math.max(init.memory, sidecars.memory) };
    } else {
      const during = add(of(c), sidecars);
      init = { cpu: Math.max(init.cpu, during.cpu), memory: Math.max(init.memory, during.memory) };
    }
  }
  const podLevel = (pod.spec as { resources?: { requests?: Record<string, string> } } | undefined)?.resources?.requests;
  const overhead = pod.spec?.overhead ?? {};
  return {
    cpu:
      (podLevel?.cpu !== undefined ? cpuMillis(podLevel.cpu) : Math.max(running.cpu, init.cpu)) +
      cpuMillis(overhead.cpu),
    memory:
      (podLevel?.memory !== undefined ? parseQuantity(podLevel.memory) : Math.max(running.memory, init.memory)) +
      parseQuantity(overhead.memory),
    pods: 1,
  };
}
