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
  const sum: Resources = { cpu: a.cpu + b.cpu, memory: a.memory + b.memory, pods: a.pods + b.pods };
  if (!a.other && !b.other) return sum;
  const other: Record<string, number> = { ...a.other };
  for (const [k, v] of Object.entries(b.other ?? {})) other[k] = (other[k] ?? 0) + v;
  return { ...sum, other };
}

/** An extended resource (a device plugin's `nvidia.com/gpu`, say) is named with a domain. */
const isExtended = (name: string) => name.includes('/');

/**
 * Does `extra` fit beside `used` on a node of `capacity`? A native resource the capacity does not
 * list (a catalog's type, before its node reports ephemeral storage or huge pages) is not counted:
 * the kubelet reports it at registration, and from then on it is. An extended resource the capacity
 * does not list (a type the catalog has no count of devices for, or a node whose device plugin has
 * not reported yet) fits one pod at a time: devices are few, and a pod pinned past them is refused
 * by the scheduler and, after --stranded-after, deleted.
 */
export function fits(used: Resources, extra: Resources, capacity: Resources): boolean {
  if (
    used.cpu + extra.cpu > capacity.cpu ||
    used.memory + extra.memory > capacity.memory ||
    used.pods + extra.pods > capacity.pods
  )
    return false;
  for (const [name, amount] of Object.entries(extra.other ?? {})) {
    if (amount <= 0) continue;
    const inUse = used.other?.[name] ?? 0;
    const has = capacity.other?.[name];
    if (has === undefined ? isExtended(name) && inUse > 0 : inUse + amount > has) return false;
  }
  return true;
}

/** A node's allocatable as Resources: CPU, memory, pods and every other resource it reports. */
export function allocatableOf(alloc: Record<string, string> | undefined): Resources | undefined {
  if (!alloc?.cpu || !alloc.memory || !alloc.pods) return undefined;
  const out: Resources = {
    cpu: cpuMillis(alloc.cpu),
    memory: parseQuantity(alloc.memory),
    pods: parseQuantity(alloc.pods),
  };
  for (const [name, q] of Object.entries(alloc)) {
    if (name === 'cpu' || name === 'memory' || name === 'pods') continue;
    (out.other ??= {})[name] = parseQuantity(q);
  }
  return out;
}

type Requested = { resources?: { requests?: Record<string, string> }; restartPolicy?: string };
type Amounts = Record<string, number>;

const amountOf = (name: string, q: string | number | undefined) => (name === 'cpu' ? cpuMillis(q) : parseQuantity(q));
const amounts = (requests: Record<string, string> | undefined): Amounts => {
  const out: Amounts = {};
  for (const [name, q] of Object.entries(requests ?? {})) out[name] = amountOf(name, q);
  return out;
};
const plus = (a: Amounts, b: Amounts): Amounts => {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
};
const max = (a: Amounts, b: Amounts): Amounts => {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = Math.max(out[k] ?? 0, v);
  return out;
};

/**
 * What kube-scheduler counts for a pod (component-helpers' PodRequests), for every resource it
 * requests: its containers plus its sidecars (init containers with restartPolicy Always, which run
 * beside them), or, if larger, an init container with the sidecars started before it; pod-level
 * requests (spec.resources: CPU, memory and huge pages) instead where set; plus overhead. Counting less
 * than the scheduler does would pin a pod to a node the scheduler then refuses it, and on a
 * Class-isolation node keep refusing every pod ipp sends after it.
 */
export function podRequests(pod: V1Pod): Resources {
  let running: Amounts = {};
  for (const c of (pod.spec?.containers ?? []) as Requested[]) running = plus(running, amounts(c.resources?.requests));
  let sidecars: Amounts = {};
  let init: Amounts = {};
  for (const c of (pod.spec?.initContainers ?? []) as Requested[]) {
    const own = amounts(c.resources?.requests);
    if (c.restartPolicy === 'Always') {
      running = plus(running, own);
      sidecars = plus(sidecars, own);
      init = max(init, sidecars);
    } else {
      init = max(init, plus(own, sidecars));
    }
  }
  const total = max(running, init);
  const podLevel = (pod.spec as { resources?: { requests?: Record<string, string> } } | undefined)?.resources?.requests;
  // What pod-level resources may set (component-helpers' IsSupportedPodLevelResource): CPU, memory, huge pages.
  for (const [name, q] of Object.entries(podLevel ?? {}))
    if (name === 'cpu' || name === 'memory' || name.startsWith('hugepages-')) total[name] = amountOf(name, q);
  const { cpu = 0, memory = 0, ...rest } = plus(total, amounts(pod.spec?.overhead));
  const out: Resources = { cpu, memory, pods: 1 };
  for (const [name, amount] of Object.entries(rest)) if (amount > 0) (out.other ??= {})[name] = amount;
  return out;
}
