// Carrying a placement out: a pod held by ipp's scheduling gate is pinned (required node affinity on
// the node's name; kube-scheduler binds it after evaluating that one node), a pod handed to scheduler
// "ipp" is bound here. Both writes are guarded by the resourceVersion the decision was made on.
import { isGated } from '../../api/pods.ts';
import type { ControllerContext } from '../context.ts';
import type { Placement } from './decide.ts';
import * as events from './events.ts';

export async function place(ctx: ControllerContext, { pod, instance, node }: Placement): Promise<void> {
  const nodeName = node.metadata!.name!;
  const instanceName = instance.metadata.name!;
  const mode = isGated(pod) ? 'pin' : 'bind';
  if (mode === 'pin') {
    await ctx.api.pods.pin(pod, nodeName);
    ctx.events.record(events.pinned(pod, instanceName, nodeName));
  } else {
    await ctx.api.pods.bind(pod, nodeName);
    ctx.events.record(events.bound(pod, instanceName, nodeName));
  }
  const created = Date.parse(String(pod.metadata?.creationTimestamp ?? ''));
  if (!Number.isNaN(created)) {
    const seconds = ((ctx.now ?? Date.now)() - created) / 1000;
    ctx.metrics.podPinDuration.observe({ class: instance.spec.class, mode }, seconds);
  }
  ctx.logger.info(
    {
      pod: `${pod.metadata!.namespace}/${pod.metadata!.name}`,
      instance: instanceName,
      node: nodeName,
      class: instance.spec.class,
    },
    mode === 'pin' ? 'pod pinned' : 'pod bound',
  );
}
