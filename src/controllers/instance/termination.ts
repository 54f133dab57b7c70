// Termination, once the Instance is being deleted: cordon and delete its Node, terminate its cloud
// instance (and any copy launched without its status being written), then release the finalizer.
import { providerName } from '../../api/classes.ts';
import { TAG_INSTANCE } from '../../api/names.ts';
import type { Instance, InstanceClass } from '../../api/types.ts';
import type { Logger } from '../../log.ts';
import { ignoreCloudNotFound } from '../../../providers/errors.ts';
import type { ControllerContext } from '../context.ts';
import * as events from './events.ts';

export class Termination {
  private readonly ctx: ControllerContext;
  constructor(ctx: ControllerContext) {
    this.ctx = ctx;
  }

  async reconcile(inst: Instance, cls: InstanceClass | undefined, log: Logger): Promise<void> {
    const { state, api } = this.ctx;
    const name = inst.metadata.name!;
    if (inst.status?.phase !== 'Draining' && inst.status?.phase !== 'Terminated') {
      await api.instances.patchStatus(name, { phase: 'Draining' });
    }
    const node =
      state.nodeByProviderID(inst.status?.providerID) ??
      (inst.status?.nodeName ? state.node(inst.status.nodeName) : undefined);
    if (node) {
      await api.nodes.cordonAndDelete(node);
      log.info({ node: node.metadata!.name }, 'node cordoned and deleted');
    }
    const which = inst.status?.provider ?? (cls ? providerName(cls) : undefined);
    const provider = which ? this.ctx.providers.get(which) : undefined;
    if (provider) {
      // The launch may have happened without its status being written: find it by its tag too.
      const ids = new Set<string>();
      if (inst.status?.providerID) ids.add(inst.status.providerID);
      for (const c of await provider.list()) if (c.tags[TAG_INSTANCE] === name) ids.add(c.providerID);
      for (const id of ids) {
        await ignoreCloudNotFound(provider.delete(id));
        log.info({ providerID: id }, 'cloud instance terminated');
      }
      this.ctx.events.record(events.terminated(inst, [...ids]));
    } else if (inst.status?.providerID) {
      log.error(
        { provider: which },
        'cannot terminate: provider not enabled in this controller; the finalizer stays until it is',
      );
      throw new Error(
        `provider ${which} of Instance ${name} is not enabled (--providers); enable it so the cloud instance can be terminated`,
      );
    }
    await api.instances.removeFinalizer(inst);
  }
}
