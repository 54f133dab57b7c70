// Keeps one RuntimeClass ipp-<class> per InstanceClass (desired.ts decides; this file reads and
// writes). Woken by InstanceClass events, on every resync, and by any change to a RuntimeClass
// named ipp-* (operator.ts routes the RuntimeClass watch here), so one deleted or edited by hand
// comes back as the class says.
import type { Controller, ControllerContext, Wakes } from '../context.ts';
import type { RuntimeClassReads, RuntimeClassWrites } from '../../kube/runtimeclasses.ts';
import { runtimeClassConflict } from './events.ts';
import { runtimeClassAction, runtimeClassName } from './desired.ts';

export class RuntimeClassController implements Controller {
  readonly name = 'runtimeclass';
  readonly wakes: Wakes = {
    instanceClass: (c) => [c.metadata.name!],
    resync: (state) => state.classes.list().map((c) => c.metadata.name!),
  };

  private readonly ctx: ControllerContext;
  private readonly api: RuntimeClassReads & RuntimeClassWrites;

  /** `api`'s writes go through the leadership fence (operator.ts). */
  constructor(ctx: ControllerContext, api: RuntimeClassReads & RuntimeClassWrites) {
    this.ctx = ctx;
    this.api = api;
  }

  async reconcile(className: string): Promise<void> {
    const cls = this.ctx.state.instanceClass(className) ?? (await this.api.readClass(className));
    const name = runtimeClassName(className);
    const action = runtimeClassAction(className, cls, await this.api.read(name));
    const log = this.ctx.logger.child({ controller: this.name, class: className, runtimeClass: name });
    switch (action.kind) {
      case 'none':
        return;
      case 'create':
        await this.api.create(action.body);
        log.info({ handler: action.body.handler }, 'RuntimeClass created');
        return;
      case 'update':
        await this.api.replace(action.body);
        log.info('RuntimeClass updated');
        return;
      case 'recreate':
        await this.api.delete(name, action.uid);
        await this.api.create(action.body);
        log.info({ handler: action.body.handler, why: action.why }, 'RuntimeClass replaced');
        return;
      case 'delete':
        await this.api.delete(name, action.uid);
        log.info('RuntimeClass deleted with its InstanceClass');
        return;
      case 'conflict':
        if (cls) this.ctx.events.record(runtimeClassConflict(cls, action.message));
        log.warn(action.message);
        return;
    }
  }
}
