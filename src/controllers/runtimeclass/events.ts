// The Events the RuntimeClass controller writes on an InstanceClass.
import { API_VERSION } from '../../api/names.ts';
import type { InstanceClass } from '../../api/types.ts';
import type { IppEvent } from '../../kube/events.ts';

export const runtimeClassConflict = (cls: InstanceClass, message: string): IppEvent => ({
  regarding: { apiVersion: API_VERSION, kind: 'InstanceClass', name: cls.metadata.name!, uid: cls.metadata.uid },
  type: 'Warning',
  reason: 'RuntimeClassConflict',
  action: 'Reconcile',
  note: message,
});
