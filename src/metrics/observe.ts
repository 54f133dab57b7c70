// Gauges that describe the world rather than events: refreshed from the caches every few seconds.
import type { V1Pod } from '@kubernetes/client-node';
import type { Instance, InstanceClass } from '../api/types.ts';
import { PHASES } from '../api/types.ts';
import { awaitsPlacement } from '../api/pods.ts';
import { timeouts } from '../controllers/instance/decisions.ts';
import type { Metrics } from './metrics.ts';

/**
 * The cache reads observeWorld makes (ClusterState has them): per class, from the indexes, so a tick
 * costs the class's Instances and ipp pods, never a pass over every cached pod.
 */
export interface World {
  readonly classes: { list(): readonly InstanceClass[] };
  classesWithInstances(): Iterable<string>;
  instancesOfClass(cls: string): readonly Instance[];
  podsOfClass(cls: string): readonly V1Pod[];
  waitingSince(pod: V1Pod): number | undefined;
}

export function observeWorld(state: World, metrics: Metrics, now: number): void {
  const classList = state.classes.list();
  const classes = new Set([...classList.map((c) => c.metadata!.name!), ...state.classesWithInstances()]);
  metrics.instances.reset();
  metrics.idleNodes.reset();
  metrics.nodeIdleSeconds.reset();
  metrics.pendingPods.reset();
  metrics.oldestPendingPodAge.reset();
  metrics.classTimeout.reset();
  for (const c of classList) {
    const t = classTimeouts(c);
    if (!t) continue;
    for (const [timeout, seconds] of Object.entries(t))
      metrics.classTimeout.set({ class: c.metadata.name!, timeout }, seconds);
  }
  for (const cls of classes) {
    // One pass over the class's Instances and one over its pods, each tick: at thousands per class,
    // a filter per phase was seven passes.
    const byPhase = new Map<string, number>(PHASES.map((p) => [p, 0]));
    const idle: Instance[] = [];
    for (const i of state.instancesOfClass(cls)) {
      const phase = i.status?.phase ?? 'Pending';
      byPhase.set(phase, (byPhase.get(phase) ?? 0) + 1);
      if (phase === 'Ready' && i.status?.idleSince && !i.metadata.deletionTimestamp) idle.push(i);
    }
    for (const phase of PHASES) metrics.instances.set({ class: cls, phase }, byPhase.get(phase)!);
    metrics.idleNodes.set({ class: cls }, idle.length);
    for (const i of idle) {
      metrics.nodeIdleSeconds.set(
        { class: cls, node: i.status!.nodeName ?? i.metadata.name! },
        Math.max(0, (now - Date.parse(i.status!.idleSince!)) / 1000),
      );
    }
    const waiting = state.podsOfClass(cls).filter(awaitsPlacement);
    metrics.pendingPods.set({ class: cls }, waiting.length);
    metrics.oldestPendingPodAge.set(
      { class: cls },
      oldestAgeSeconds(waiting, now, (p) => state.waitingSince(p)),
    );
  }
}

/**
 * Seconds the longest waiting of `pods` has waited (`since`: from when, ClusterView.waitingSince); 0
 * for none (so the series exists for every class).
 */
export function oldestAgeSeconds(pods: readonly V1Pod[], now: number, since: (p: V1Pod) => number | undefined): number {
  let oldest = now;
  for (const p of pods) {
    const t = since(p);
    if (t !== undefined && Number.isFinite(t)) oldest = Math.min(oldest, t);
  }
  return Math.max(0, (now - oldest) / 1000);
}

/** The class's timeouts in seconds, defaults applied; undefined for a class whose durations do not parse. */
export function classTimeouts(c: InstanceClass): { launch: number; registration: number; idle: number } | undefined {
  try {
    const t = timeouts(c);
    return { launch: t.launchMs / 1000, registration: t.registrationMs / 1000, idle: t.idleMs / 1000 };
  } catch {
    // The class controller reports the bad duration on the class; an alert threshold cannot be made from it.
    return undefined;
  }
}
