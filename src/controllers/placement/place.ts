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
    // No Event of its own: kube-scheduler's Scheduled Event names the node moments later (as after
    // Karpenter's Nominated), and an Event per pod is a write per pod in a burst. The pin's time is
    // on the pod (ipp.dev/pinned-at), its Instance in the Provisioning Event and the claim.
    await ctx.api.pods.pin(pod, nodeName);
  } else {
    await ctx.api.pods.bind(pod, nodeName);
    ctx.events.record(events.bound(pod, instanceName, nodeName));
  }
  // From when it waited for ipp: a queue's time before it admitted the pod is not ipp's.
  const since = ctx.state.waitingSince(pod);
  if (since !== undefined) {
    const seconds = Math.max(0, (ctx.now ?? Date.now)() - since) / 1000;
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
