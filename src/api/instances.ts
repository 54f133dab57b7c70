// Facts about an Instance that several controllers decide on.
import type { Instance } from './types.ts';

/** Not being deleted and not terminated: an Instance that can still carry a pod. */
export const isLive = (i: Instance) => !i.metadata.deletionTimestamp && i.status?.phase !== 'Terminated';
