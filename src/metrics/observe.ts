// Gauges that describe the world rather than events: refreshed from the caches every few seconds.
import type { Instance } from '../api/types.ts';
import { PHASES } from '../api/types.ts';
import { awaitsPlacement, classOf } from '../api/pods.ts';
import type { ClusterState } from '../state/cluster.ts';
import type { Metrics } from './metrics.ts';

export function observeWorld(state: ClusterState, metrics: Metrics, now: number): void {
  const instances = state.instances.list() as Instance[];
  const classes = new Set([
    ...state.classes.list().map((c) => c.metadata!.name!),
    ...instances.map((i) => i.spec.class),
  ]);
  metrics.instances.reset();
  metrics.idleNodes.reset();
  metrics.nodeIdleSeconds.reset();
  metrics.pendingPods.reset();
  for (const cls of classes) {
    const mine = instances.filter((i) => i.spec.class === cls);
    for (const phase of PHASES)
      metrics.instances.set({ class: cls, phase }, mine.filter((i) => (i.status?.phase ?? 'Pending') === phase).length);
    const idle = mine.filter((i) => i.status?.phase === 'Ready' && i.status.idleSince && !i.metadata.deletionTimestamp);
    metrics.idleNodes.set({ class: cls }, idle.length);
    for (const i of idle) {
      metrics.nodeIdleSeconds.set(
        { class: cls, node: i.status!.nodeName ?? i.metadata.name! },
        Math.max(0, (now - Date.parse(i.status!.idleSince!)) / 1000),
      );
    }
    metrics.pendingPods.set(
      { class: cls },
      state.pods.list().filter((p) => classOf(p) === cls && awaitsPlacement(p)).length,
    );
  }
}
