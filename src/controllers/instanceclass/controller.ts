// Keeps each InstanceClass's status true to the world, so `kubectl get ic` tells whether a class
// works and what it runs. A class that turns invalid gets a Warning Event with the reason.
import { usability } from '../../api/classes.ts';
import { classOf } from '../../api/pods.ts';
import type { Controller, ControllerContext, Wakes } from '../context.ts';
import { classUnusable } from './events.ts';
import { classStatus, statusChanged } from './status.ts';

export class InstanceClassController implements Controller {
  readonly name = 'instanceclass';
  readonly wakes: Wakes = {
    pod: (p) => [classOf(p)].filter((k): k is string => !!k),
    instance: (i) => [i.spec.class],
    instanceClass: (c) => [c.metadata.name!],
    resync: (state) => state.classes.list().map((c) => c.metadata.name!),
  };

  private readonly ctx: ControllerContext;
  constructor(ctx: ControllerContext) {
    this.ctx = ctx;
  }

  async reconcile(name: string): Promise<void> {
    const { state } = this.ctx;
    const cls = state.instanceClass(name);
    if (!cls) return;
    const usable = usability(cls, name, this.ctx.providers);
    const problem = usable.usable ? undefined : usable;
    const next = classStatus(cls, problem, state.instancesOfClass(name), state.podsOfClass(name), new Date());
    if (!statusChanged(cls.status, next)) return;
    const wasReady = cls.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    if (problem && wasReady !== 'False') this.ctx.events.record(classUnusable(cls, problem));
    await this.ctx.api.classes.patchStatus(name, next);
  }
}
