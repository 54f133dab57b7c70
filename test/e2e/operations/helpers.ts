// What the operations e2e files share: the controller's Events as kubectl sees them, the simulated
// cloud's inventory, plain opted-in pods.
import { readFileSync } from 'node:fs';
import { EventsV1Api, type EventsV1Event, type V1Pod } from '@kubernetes/client-node';
import { expect } from 'vitest';
import { TAG_CLASS, TAG_CLUSTER, TAG_INSTANCE } from '../../../src/api/names.ts';
import { eventually, type Clients } from '../support/cluster.ts';
import type { Ipp } from '../support/ipp.ts';

export const REPORTING_CONTROLLER = 'ipp.dev/controller';

/** Our Events (events.k8s.io/v1, reportingController ipp.dev/controller) in one namespace. */
export async function ippEvents(c: Clients, namespace: string): Promise<EventsV1Event[]> {
  const list = await c.kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace });
  return list.items.filter((e) => e.reportingController === REPORTING_CONTROLLER);
}

export interface EventQuery {
  /** Where kubectl looks: the object's namespace, `default` for cluster-scoped objects. */
  namespace: string;
  kind: string;
  name: string;
  reason: string;
  type?: 'Normal' | 'Warning';
}

const describe = (e: EventsV1Event) => `${e.regarding?.kind}/${e.regarding?.name} ${e.type} ${e.reason}`;

/** Waits for an Event with this reason about this object, and returns it. */
export async function expectEvent(c: Clients, q: EventQuery, timeoutMs = 60_000): Promise<EventsV1Event> {
  return eventually(
    `Event ${q.reason} on ${q.kind} ${q.namespace}/${q.name}`,
    async () => {
      const all = await ippEvents(c, q.namespace);
      const about = all.filter((e) => e.regarding?.kind === q.kind && e.regarding.name === q.name);
      const hit = about.find((e) => e.reason === q.reason);
      expect(hit, `Events about it so far: ${about.map(describe).join(', ') || 'none'}`).toBeDefined();
      if (q.type) expect(hit!.type).toBe(q.type);
      // events.k8s.io/v1 fields a user's tooling relies on.
      expect(hit!.action).toBeTruthy();
      expect(hit!.note).toBeTruthy();
      expect(hit!.reportingInstance).toBeTruthy();
      if (q.kind === 'Pod') expect(hit!.regarding?.namespace).toBe(q.namespace);
      return hit!;
    },
    timeoutMs,
    500,
  );
}

/** The simulated cloud's instances of one cluster: ConfigMaps labelled ipp.dev/cluster in its namespace. */
export async function cloudInstances(
  c: Clients,
  cloudNamespace: string,
  cluster: string,
  cls?: string,
): Promise<{ id: string; instance: string }[]> {
  const selector = `${TAG_CLUSTER}=${cluster}${cls ? `,${TAG_CLASS}=${cls}` : ''}`;
  const list = await c.core.listNamespacedConfigMap({ namespace: cloudNamespace, labelSelector: selector });
  return list.items.map((cm) => {
    const rec = JSON.parse(cm.data?.instance ?? '{}') as { tags?: Record<string, string> };
    return { id: cm.metadata!.name!, instance: rec.tags?.[TAG_INSTANCE] ?? '' };
  });
}

/** A bare pod that opts in with the ipp-class label, nothing else. */
export function ippPod(name: string, cls: string): V1Pod {
  return {
    metadata: { name, labels: { app: 'ops', 'ipp-class': cls } },
    spec: { containers: [{ name: 'c', image: 'nginx:alpine' }] },
  };
}

/** The controller's whole log (pino JSON lines), parsed. */
export function logLines(ipp: Ipp): { msg?: string; [k: string]: unknown }[] {
  return readFileSync(ipp.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string });
}
