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

/** What the scheduler counts for a pod: max(sum of containers, largest init container) plus overhead. */
export function podRequests(pod: V1Pod): Resources {
  const sum = (
    cs: { resources?: { requests?: Record<string, string> } }[] | undefined,
    pick: (r: Record<string, string>) => number,
  ) => (cs ?? []).reduce((t, c) => t + pick(c.resources?.requests ?? {}), 0);
  const max = (
    cs: { resources?: { requests?: Record<string, string> } }[] | undefined,
    pick: (r: Record<string, string>) => number,
  ) => (cs ?? []).reduce((t, c) => Math.max(t, pick(c.resources?.requests ?? {})), 0);
  const cpu = (r: Record<string, string>) => cpuMillis(r.cpu);
  const mem = (r: Record<string, string>) => parseQuantity(r.memory);
  const overhead = pod.spec?.overhead ?? {};
  return {
    cpu: Math.max(sum(pod.spec?.containers, cpu), max(pod.spec?.initContainers, cpu)) + cpuMillis(overhead.cpu),
    memory:
      Math.max(sum(pod.spec?.containers, mem), max(pod.spec?.initContainers, mem)) + parseQuantity(overhead.memory),
    pods: 1,
  };
}
