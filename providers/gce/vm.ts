// A Compute Engine VM as the provider-neutral CloudInstance controllers read.
import type { protos } from '@google-cloud/compute';
import type { CloudInstance, CloudState } from '../types.ts';
import { TAG_INSTANCE } from '../../src/api/names.ts';
import { instanceOfVmName, lastSegment, providerIdOf, tagsOfLabels } from './names.ts';

export type Vm = protos.google.cloud.compute.v1.IInstance;

const STATES: Record<string, CloudState> = {
  PROVISIONING: 'pending',
  STAGING: 'pending',
  REPAIRING: 'pending',
  RUNNING: 'running',
  STOPPING: 'stopping',
  SUSPENDING: 'stopping',
  SUSPENDED: 'stopping',
  STOPPED: 'stopping',
  // GCE's TERMINATED is a stopped VM, not a deleted one: a deleted VM is simply gone (404).
  TERMINATED: 'stopping',
};

/** The VM's labels as tags; the Instance from its name until the label is there. */
export function tagsOf(vm: Vm): Record<string, string> {
  const tags = tagsOfLabels(vm.labels);
  const fromName = instanceOfVmName(vm.name ?? '');
  if (!tags[TAG_INSTANCE] && fromName) tags[TAG_INSTANCE] = fromName;
  return tags;
}

export function toCloudInstance(vm: Vm, project: string): CloudInstance {
  const zone = lastSegment(vm.zone);
  return {
    providerID: providerIdOf(project, zone, vm.name ?? ''),
    instanceType: lastSegment(vm.machineType),
    zone,
    state: STATES[vm.status ?? ''] ?? 'pending',
    tags: tagsOf(vm),
    launchedAt: new Date(vm.creationTimestamp ?? 0),
  };
}
