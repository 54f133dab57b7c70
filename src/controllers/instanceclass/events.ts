// The Events the class controller writes on an InstanceClass.
import type { ClassProblem } from '../../api/classes.ts';
import { API_VERSION } from '../../api/names.ts';
import type { InstanceClass } from '../../api/types.ts';
import type { IppEvent } from '../../kube/events.ts';

export const classUnusable = (cls: InstanceClass, problem: ClassProblem): IppEvent => ({
  regarding: { apiVersion: API_VERSION, kind: 'InstanceClass', name: cls.metadata.name!, uid: cls.metadata.uid },
  type: 'Warning',
  reason: problem.reason,
  action: 'Validate',
  note: problem.message,
});
