// Keeps each InstanceClass's status true to the world, so `kubectl get ic` tells whether a class
// works and what it runs. A class that turns invalid gets a Warning Event with the reason.
import { CustomObjectsApi } from '@kubernetes/client-node';
import type { ControllerContext } from '../context.ts';
import { API_VERSION, GROUP, VERSION } from '../../api/names.ts';
import type { EventRecorder } from '../../kube/events.ts';
import { isNotFound } from '../../kube/errors.ts';
import { mergePatch } from '../../kube/patch.ts';
import type { ClusterState } from '../../state/cluster.ts';
import type { CloudProvider } from '../../../providers/types.ts';
import { classProblem } from '../provisioning/controller.ts';
import { classStatus, statusChanged } from './status.ts';

export class InstanceClassController {
  private readonly api: CustomObjectsApi;
  private readonly state: ClusterState;
  private readonly providers: Map<string, CloudProvider>;
  private readonly events: EventRecorder;

  constructor(ctx: ControllerContext) {
    this.api = ctx.kubeconfig.makeApiClient(CustomObjectsApi);
    this.state = ctx.state;
    this.providers = ctx.providers;
    this.events = ctx.events;
  }

  async reconcile(name: string): Promise<void> {
    const cls = this.state.instanceClass(name);
    if (!cls) return;
    const problem = classProblem(cls, name, this.providers);
    const next = classStatus(cls, problem, this.state.instancesOfClass(name), this.state.podsOfClass(name), new Date());
    if (!statusChanged(cls.status, next)) return;
    const wasReady = cls.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    if (problem && wasReady !== 'False') {
      this.events.publish(
        { apiVersion: API_VERSION, kind: 'InstanceClass', name, uid: cls.metadata.uid },
        'Warning',
        problem.reason,
        'Validate',
        problem.message,
      );
    }
    try {
      await this.api.patchClusterCustomObjectStatus(
        { group: GROUP, version: VERSION, plural: 'instanceclasses', name, body: { status: next } },
        mergePatch,
      );
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}
