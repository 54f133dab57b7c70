// What the caches keep of a pod and a node: everything the controllers read (sizing, placement,
// claims, isolation, idle and audit decisions), nothing that only costs memory.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { podRequests } from '../../../src/api/quantity.ts';
import { isDaemonSetPod, isMirrorPod, isWorkload } from '../../../src/api/pods.ts';
import { isIppPod, leanNode, leanPod } from '../../../src/state/lean.ts';

const fullPod = (): V1Pod => ({
  metadata: {
    name: 'relay',
    namespace: 'mail',
    uid: 'u1',
    resourceVersion: '7',
    labels: { 'ipp-class': 'c' },
    annotations: { 'ipp.dev/instance': 'i1', 'kubectl.kubernetes.io/last-applied-configuration': '{"huge":true}' },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'r', controller: true }],
    managedFields: [{ manager: 'kubectl', operation: 'Apply', fieldsV1: { f: {} } }],
    deletionTimestamp: new Date(0),
  },
  spec: {
    nodeName: 'n1',
    schedulerName: 'default-scheduler',
    schedulingGates: [{ name: 'ipp.dev/provision' }],
    nodeSelector: { 'ipp.dev/instance': 'i1' },
    affinity: { nodeAffinity: {} },
    tolerations: [{ key: 'ipp.dev/class', operator: 'Equal', value: 'c', effect: 'NoSchedule' }],
    overhead: { cpu: '100m' },
    containers: [
      {
        name: 'postfix',
        image: 'postfix:3',
        env: [{ name: 'A', value: 'x'.repeat(1000) }],
        command: ['postfix', 'start-fg'],
        volumeMounts: [{ name: 'cfg', mountPath: '/etc/postfix' }],
        resources: { requests: { cpu: '2', memory: '1Gi' } },
      },
    ],
    initContainers: [{ name: 'sidecar', image: 'x', restartPolicy: 'Always', resources: { requests: { cpu: '1' } } }],
    ephemeralContainers: [{ name: 'debug', image: 'busybox' }],
    volumes: [
      { name: 'cfg', configMap: { name: 'postfix' } },
      { name: 'spool', persistentVolumeClaim: { claimName: 'spool' } },
    ],
  },
  status: {
    phase: 'Running',
    conditions: [{ type: 'PodScheduled', status: 'True' }],
    containerStatuses: [{ name: 'postfix', image: 'postfix:3', imageID: 'sha', ready: true, restartCount: 0 }],
  },
});

describe('leanPod', () => {
  it('keeps what the controllers read', () => {
    const before = fullPod();
    const p = leanPod(fullPod());
    expect(p.metadata!.labels).toEqual(before.metadata!.labels);
    expect(p.metadata!.annotations).toEqual({ 'ipp.dev/instance': 'i1' });
    expect(p.metadata!.ownerReferences).toEqual(before.metadata!.ownerReferences);
    expect(p.metadata!.deletionTimestamp).toEqual(before.metadata!.deletionTimestamp);
    expect(p.metadata!.resourceVersion).toBe('7');
    for (const k of [
      'nodeName',
      'schedulerName',
      'schedulingGates',
      'nodeSelector',
      'affinity',
      'tolerations',
      'overhead',
    ])
      expect(p.spec![k as keyof V1Pod['spec']], k).toEqual(before.spec![k as keyof V1Pod['spec']]);
    expect(p.spec!.volumes).toEqual([{ name: 'spool', persistentVolumeClaim: { claimName: 'spool' } }]);
    expect(p.status!.phase).toBe('Running');
    expect(p.status!.conditions).toEqual(before.status!.conditions);
    expect(podRequests(p)).toEqual(podRequests(before));
    expect(p.spec!.initContainers![0]!.restartPolicy).toBe('Always');
  });

  it('drops managedFields, last-applied, container details, ephemeral containers and container statuses', () => {
    const p = leanPod(fullPod());
    expect(p.metadata!.managedFields).toBeUndefined();
    expect(p.spec!.containers).toEqual([{ name: 'postfix', resources: { requests: { cpu: '2', memory: '1Gi' } } }]);
    expect(p.spec!.ephemeralContainers).toBeUndefined();
    expect(p.status!.containerStatuses).toBeUndefined();
    expect(JSON.stringify(p).length).toBeLessThan(JSON.stringify(fullPod()).length / 2);
  });

  it("keeps an ipp pod's annotations map when last-applied was its only entry (the claim adds into it)", () => {
    const p = leanPod({
      metadata: {
        name: 'x',
        labels: { 'ipp-class': 'c' },
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
      },
    });
    expect(p.metadata!.annotations).toEqual({});
  });

  it('leaves a minimal pod valid', () => {
    const p = leanPod({
      metadata: { name: 'x', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } },
    });
    expect(p).toStrictEqual({ metadata: { name: 'x' }, spec: { containers: [] } });
  });
});

describe("leanPod of a pod that is not ipp's", () => {
  const other = (): V1Pod => {
    const p = fullPod();
    delete p.metadata!.labels;
    p.metadata!.annotations = {
      'kubernetes.io/config.mirror': 'abc',
      'prometheus.io/scrape': 'true',
      'kubectl.kubernetes.io/last-applied-configuration': '{}',
    };
    p.metadata!.ownerReferences = [
      { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'ds', uid: 'd', controller: true, blockOwnerDeletion: true },
      { apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'x' },
    ];
    p.spec!.schedulingGates = undefined;
    p.spec!.priority = 1000;
    return p;
  };

  it('keeps only what makes it an occupant of a node', () => {
    const before = other();
    const p = leanPod(other());
    expect(p).toEqual({
      metadata: {
        name: 'relay',
        namespace: 'mail',
        uid: 'u1',
        resourceVersion: '7',
        deletionTimestamp: before.metadata!.deletionTimestamp,
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'ds', uid: 'd', controller: true }],
        annotations: { 'kubernetes.io/config.mirror': 'abc' },
      },
      spec: {
        containers: [{ name: 'postfix', resources: { requests: { cpu: '2', memory: '1Gi' } } }],
        initContainers: [{ name: 'sidecar', restartPolicy: 'Always', resources: { requests: { cpu: '1' } } }],
        nodeName: 'n1',
        overhead: { cpu: '100m' },
        schedulerName: 'default-scheduler',
        priority: 1000,
      },
      status: { phase: 'Running' },
    });
  });

  it('answers every question the controllers ask of an occupant as the full pod does', () => {
    const full = other();
    const p = leanPod(other());
    expect(podRequests(p)).toEqual(podRequests(full));
    expect([isDaemonSetPod(p), isMirrorPod(p), isWorkload(p)]).toEqual([
      isDaemonSetPod(full),
      isMirrorPod(full),
      isWorkload(full),
    ]);
    expect(JSON.stringify(p).length).toBeLessThan(JSON.stringify(full).length / 3);
  });

  it("keeps an occupant's pod-level requests, which the scheduler counts instead of its containers'", () => {
    const full = other();
    (full.spec as { resources?: unknown }).resources = { requests: { cpu: '4' }, limits: { cpu: '8' } };
    const p = leanPod(JSON.parse(JSON.stringify(full)) as V1Pod);
    expect((p.spec as { resources?: unknown }).resources).toEqual({ requests: { cpu: '4' } });
    expect(podRequests(p)).toEqual(podRequests(full));
    expect(podRequests(p).cpu).toBe(4100);
  });

  it('shares what pods of one ReplicaSet hold alike, frozen, and keeps what differs apart', () => {
    const replica = (name: string, uid: string): V1Pod => {
      const p = other();
      p.metadata = { ...p.metadata!, name, uid };
      // Parsed from JSON, as the informer gets it: equal values, separate objects.
      return JSON.parse(JSON.stringify(p)) as V1Pod;
    };
    const a = leanPod(replica('web-a', 'ua'));
    const b = leanPod(replica('web-b', 'ub'));
    expect(b.metadata!.ownerReferences).toBe(a.metadata!.ownerReferences);
    expect(b.spec!.containers).toBe(a.spec!.containers);
    expect(b.spec!.initContainers).toBe(a.spec!.initContainers);
    expect(b.status).toBe(a.status);
    expect(b.metadata!.uid).toBe('ub');
    expect(() => {
      a.spec!.containers[0]!.resources!.requests!.cpu = '64';
    }).toThrow(TypeError);
    expect(podRequests(b)).toEqual(podRequests(other()));
    // ipp's own pods keep their own copies: their controllers' objects are theirs to replace.
    const relay = leanPod(fullPod());
    expect(Object.isFrozen(relay.spec!.containers)).toBe(false);
  });

  it('keeps containers that differ apart', () => {
    const usual = leanPod(other());
    const p = other();
    p.spec!.containers[0]!.resources!.requests!.cpu = '3';
    const bigger = leanPod(p);
    expect(bigger.spec!.containers).not.toBe(usual.spec!.containers);
    expect(podRequests(bigger)).toEqual({ ...podRequests(usual), cpu: podRequests(usual).cpu + 1000 });
    expect(podRequests(leanPod(other()))).toEqual(podRequests(usual));
  });

  it('tells ipp pods by label, scheduler name or RuntimeClass; not by an annotation anyone may write', () => {
    const base = (): V1Pod => ({ metadata: { name: 'x' }, spec: { containers: [] } });
    expect(isIppPod(base())).toBe(false);
    expect(isIppPod({ ...base(), metadata: { labels: { 'ipp-class': 'c' } } })).toBe(true);
    expect(isIppPod({ ...base(), metadata: { annotations: { 'ipp.dev/instance': 'i' } } })).toBe(false);
    expect(isIppPod({ ...base(), spec: { containers: [], schedulerName: 'ipp' } })).toBe(true);
    expect(isIppPod({ ...base(), spec: { containers: [], runtimeClassName: 'ipp-c' } })).toBe(true);
  });
});

describe('annotations a tenant stuffs into a pod', () => {
  const stuffed = (labels?: Record<string, string>): V1Pod => ({
    metadata: {
      name: 'x',
      ...(labels ? { labels } : {}),
      annotations: {
        'ipp.dev/pad': 'x'.repeat(250_000),
        'ipp.dev/do-not-disrupt': 'y'.repeat(250_000),
        'ipp.dev/instance': 'i1',
        'ipp.dev/pinned-at': '2026-12-02T10:00:00Z',
        'kubernetes.io/config.mirror': 'abc',
        'example.com/note': 'z'.repeat(100_000),
      },
    },
    spec: { containers: [] },
  });
  const kept = {
    'ipp.dev/instance': 'i1',
    'ipp.dev/pinned-at': '2026-12-02T10:00:00Z',
    'kubernetes.io/config.mirror': 'abc',
  };

  it('keeps only the annotations ipp reads, each no longer than an object name, on an ipp pod and any other', () => {
    expect(leanPod(stuffed({ 'ipp-class': 'c' })).metadata!.annotations).toEqual(kept);
    expect(leanPod(stuffed()).metadata!.annotations).toEqual(kept);
    expect(JSON.stringify(leanPod(stuffed())).length).toBeLessThan(1_000);
  });
});

describe('leanNode', () => {
  it('drops image lists and volume bookkeeping, keeps conditions, allocatable, taints and providerID', () => {
    const n: V1Node = {
      metadata: { name: 'n1', labels: { 'ipp.dev/class': 'c' }, managedFields: [{ manager: 'kubelet' }] },
      spec: { providerID: 'aws:///z/i-1', unschedulable: true, taints: [{ key: 'k', effect: 'NoSchedule' }] },
      status: {
        conditions: [{ type: 'Ready', status: 'True' }],
        allocatable: { cpu: '4' },
        images: [{ names: ['a', 'b'], sizeBytes: 1 }],
        volumesInUse: ['v'],
        volumesAttached: [{ name: 'v', devicePath: '/d' }],
      },
    };
    const lean = leanNode(structuredClone(n));
    expect(lean.metadata).toEqual({ name: 'n1', labels: { 'ipp.dev/class': 'c' } });
    expect(lean.spec).toEqual(n.spec);
    expect(lean.status).toEqual({ conditions: [{ type: 'Ready', status: 'True' }], allocatable: { cpu: '4' } });
  });
});
