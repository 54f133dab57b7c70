// What an Event is to ipp: the object it is about, its type, reason, action and note. Controllers
// build these with small named functions (their events.ts) and hand them to the recorder (events.ts).
import { API_VERSION } from '../api/names.ts';

export interface EventObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  /** Absent for cluster-scoped objects (Instance, InstanceClass, Node): their Events go to `default`. */
  namespace?: string;
  uid?: string;
}

export type EventType = 'Normal' | 'Warning';

/** One Event to record: the controllers build these with small named functions (their events.ts). */
export interface IppEvent {
  regarding: EventObjectRef;
  type: EventType;
  /** UpperCamelCase, what happened: Launched, InsufficientCapacity. */
  reason: string;
  /** UpperCamelCase, what ipp was doing: Launch, Register, Pin, Teardown. */
  action: string;
  note: string;
}

/** What controllers need of the recorder: it takes Events and never fails or blocks them. */
export interface EventPublisher {
  record(...events: IppEvent[]): void;
}

/** The reference of a pod, for publish(). */
export const podRef = (p: { metadata?: { name?: string; namespace?: string; uid?: string } }): EventObjectRef => ({
  apiVersion: 'v1',
  kind: 'Pod',
  name: p.metadata!.name!,
  namespace: p.metadata!.namespace!,
  uid: p.metadata!.uid,
});

/** The reference of an Instance (cluster-scoped), for publish(). */
export const instanceRef = (i: { metadata: { name?: string; uid?: string } }): EventObjectRef => ({
  apiVersion: API_VERSION,
  kind: 'Instance',
  name: i.metadata.name!,
  uid: i.metadata.uid,
});
