// EventRecorder against the real apiserver: its events.k8s.io/v1 bodies pass validation (MicroTime,
// reporting fields), repeats become one Event with a series, and the Events are where kubectl looks
// for them (the object's namespace; `default` for cluster-scoped objects).
import { CoreV1Api, EventsV1Api, type EventsV1Event } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventRecorder, type EventObjectRef } from '../../src/kube/events.ts';
import { createLogger } from '../../src/log.ts';
import { clients, namespace, suffix, type Clients } from './support/cluster.ts';

describe('events on a real apiserver', () => {
  let c: Clients;
  let ns: string;
  let events: EventsV1Api;
  let pod: EventObjectRef;
  let recorder: EventRecorder;

  beforeAll(async () => {
    c = clients();
    ns = await namespace(c, 'events');
    events = c.kc.makeApiClient(EventsV1Api);
    // Never scheduled (no node matches): it only needs to exist, with a UID.
    const created = await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'web-0' },
        spec: { nodeSelector: { nowhere: 'true' }, containers: [{ name: 'c', image: 'nginx' }] },
      },
    });
    pod = { apiVersion: 'v1', kind: 'Pod', name: 'web-0', namespace: ns, uid: created.metadata!.uid! };
    recorder = new EventRecorder({
      kubeconfig: c.kc,
      reportingController: 'ipp.dev/controller',
      reportingInstance: 'ipp-controller-e2e',
      logger: createLogger('warn'),
    });
  });
  afterAll(async () => {
    await c.core.deleteNamespace({ name: ns });
  });

  const about = async (namespace: string, name: string): Promise<EventsV1Event[]> =>
    (await events.listNamespacedEvent({ namespace })).items.filter(
      (e) => e.regarding?.name === name && e.reportingController === 'ipp.dev/controller',
    );

  it('creates one Event per distinct occurrence and counts repeats in its series', async () => {
    for (let i = 0; i < 4; i++)
      recorder.publish(
        pod,
        'Warning',
        'InsufficientCapacity',
        'Launch',
        'no capacity for i3.metal in any zone; retrying',
      );
    recorder.publish(pod, 'Normal', 'Provisioning', 'Provision', 'creating Instance web-0-abc for class postfix');
    await recorder.flush();

    const found = await about(ns, 'web-0');
    expect(found).toHaveLength(2);
    const warning = found.find((e) => e.reason === 'InsufficientCapacity')!;
    expect(warning).toMatchObject({
      type: 'Warning',
      action: 'Launch',
      note: 'no capacity for i3.metal in any zone; retrying',
      reportingController: 'ipp.dev/controller',
      reportingInstance: 'ipp-controller-e2e',
      regarding: { kind: 'Pod', name: 'web-0', namespace: ns, uid: pod.uid },
    });
    expect(warning.series?.count).toBe(4);
    expect(warning.metadata?.name).toMatch(/^web-0\./);
    const normal = found.find((e) => e.reason === 'Provisioning')!;
    expect(normal.series).toBeUndefined();

    // The apiserver stored the times with microsecond precision.
    // (kube-scheduler adds its own FailedScheduling Event about this pod: only ours are counted.)
    const raw = (
      await c.kc
        .makeApiClient(CoreV1Api)
        .listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.uid=${pod.uid}` })
    ).items.filter((e) => e.reportingComponent === 'ipp.dev/controller');
    expect(raw).toHaveLength(2);
    expect(raw.find((e) => e.reason === 'InsufficientCapacity')!.series?.count).toBe(4);
    const stored = String((raw.find((e) => e.reason === 'InsufficientCapacity') as { eventTime?: unknown }).eventTime);
    expect(stored).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

    // Later repeats update the same Event.
    recorder.publish(
      pod,
      'Warning',
      'InsufficientCapacity',
      'Launch',
      'no capacity for i3.metal in any zone; retrying',
    );
    await recorder.flush();
    const again = await about(ns, 'web-0');
    expect(again).toHaveLength(2);
    expect(again.find((e) => e.reason === 'InsufficientCapacity')!.series?.count).toBe(5);
  });

  it('puts Events about cluster-scoped objects into default, where kubectl describe finds them', async () => {
    const name = `ipp-node-${suffix()}`;
    recorder.publish(
      { apiVersion: 'v1', kind: 'Node', name },
      'Normal',
      'Idle',
      'Teardown',
      'no workload pods since 10:00; terminating after idleTimeout',
    );
    await recorder.flush();
    const found = await about('default', name);
    expect(found).toHaveLength(1);
    expect(found[0]!.regarding).toMatchObject({ kind: 'Node', name });
    await events.deleteNamespacedEvent({ namespace: 'default', name: found[0]!.metadata!.name! });
  });

  it('the MicroTime form is what makes it work: the apiserver rejects a millisecond eventTime', async () => {
    // Control for the test above: the same body with a plain Date (toISOString: 3 digits) fails.
    const bad = {
      metadata: { name: `ms-${suffix()}`, namespace: ns },
      eventTime: new Date().toISOString() as unknown as EventsV1Event['eventTime'],
      reportingController: 'ipp.dev/controller',
      reportingInstance: 'ipp-controller-e2e',
      action: 'Launch',
      reason: 'Test',
      type: 'Normal',
      regarding: { apiVersion: 'v1', kind: 'Pod', name: 'web-0', namespace: ns },
    } satisfies EventsV1Event;
    await expect(events.createNamespacedEvent({ namespace: ns, body: bad })).rejects.toMatchObject({
      code: expect.any(Number),
    });
  });
});
