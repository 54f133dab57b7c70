// plan(): which Instance each waiting pod of one class gets, and which pods can be placed now.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { Instance, InstanceClass } from '../../../../src/api/types.ts';
import { claimStands, plan, type Plan, type PlanInput } from '../../../../src/controllers/provisioning/plan.ts';
import { FakeCluster } from '../../fake/cluster.ts';
import { awaitsPlacement } from '../../../../src/api/pods.ts';
import type { Resources } from '../../../../providers/types.ts';
import type { PodZones } from '../../../../src/api/zones.ts';
import { CLASS, cls, instance, node as anyNode, pod } from '../fixtures.ts';
import { NODE_INSTANCE_LABEL, POD_PINNED_AT_ANNOTATION } from '../../../../src/api/names.ts';

/** A node of the class, as its kubelet registers it (label and taints). */
const node = (name: string, o: Parameters<typeof anyNode>[1] = {}) => anyNode(name, { class: CLASS, ...o });

interface Input {
  cls?: InstanceClass;
  pods: V1Pod[];
  instances?: Instance[];
  /** Node of an Instance, by Instance name. */
  nodes?: Record<string, V1Node>;
  capacity?: (i: Instance) => Resources | undefined;
  /** Pods bound to a node, by node name. */
  onNode?: Record<string, V1Pod[]>;
  now?: number;
  creating?: string[];
  /** Zones each pod may be launched in, by pod name. */
  zones?: Record<string, PodZones>;
  /** When a queue let each pod go, by pod name (else it waits from its creation). */
  released?: Record<string, string>;
  /** Nodes a pod left without being seen to end. */
  vacated?: string[];
}

function run(input: Input): Plan {
  let n = 0;
  return plan({
    cls: input.cls ?? cls(),
    pods: input.pods,
    instances: input.instances ?? [],
    // Without explicit nodes, a Ready Instance has a Ready node (as it does in a cluster).
    nodeOf: (i) =>
      input.nodes
        ? input.nodes[i.metadata.name!]
        : i.status?.phase === 'Ready'
          ? node(`n-${i.metadata.name}`)
          : undefined,
    podsOnNode: (n) => input.onNode?.[n] ?? [],
    capacityOf: input.capacity ?? (() => undefined),
    newName: () => `new-${++n}`,
    now: input.now ?? Date.parse('2024-01-01T01:00:00Z'),
    creating: input.creating,
    zonesOf: (p) => input.zones?.[p.metadata!.name!],
    leftUnconfirmed: (n) => input.vacated?.includes(n) ?? false,
    waitingSince: (p) => {
      const released = input.released?.[p.metadata!.name!];
      return Date.parse(String(released ?? p.metadata!.creationTimestamp));
    },
  });
}

/** "pod->instance" with a "+" when the Instance is to be created. */
const claims = (p: Plan) => p.claims.map((c) => `${c.pod.metadata!.name}->${c.instance}${c.create ? '+' : ''}`);
const names = (pods: V1Pod[]) => pods.map((p) => p.metadata!.name);
const at = (minute: number) => `2024-01-01T00:${String(minute).padStart(2, '0')}:00Z`;

const GiB = 2 ** 30;
const cap = (cpu: number, pods = 110, memory = 64 * GiB): Resources => ({ cpu, memory, pods });

/** Pins `p` to `nodeName` by name, as placement does; unschedulable there since `since` when given. */
function pinByName(p: V1Pod, nodeName: string, since?: Date, message = 'no'): V1Pod {
  p.spec!.affinity = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [nodeName] }] }],
      },
    },
  };
  if (since)
    p.status = {
      phase: 'Pending',
      conditions: [
        { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: since },
      ],
    };
  return p;
}

describe('Pod isolation', () => {
  it('gives each waiting pod its own new Instance, never sharing a fresh one', () => {
    const p = run({ pods: [pod('a', { created: at(1) }), pod('b', { created: at(2) }), pod('c', { created: at(3) })] });
    expect(claims(p)).toEqual(['a->new-1+', 'b->new-2+', 'c->new-3+']);
    expect(p.blockedByMaxInstances).toEqual([]);
  });

  it('reuses an idle live Instance, preferring a Ready one over an older launching one', () => {
    const p = run({
      pods: [pod('a', { created: at(1) }), pod('b', { created: at(2) }), pod('c', { created: at(3) })],
      instances: [
        instance('launching', { phase: 'Launched', created: at(0) }),
        instance('ready', { phase: 'Ready', created: at(5) }),
      ],
    });
    expect(claims(p)).toEqual(['a->ready', 'b->launching', 'c->new-1+']);
  });

  it('reuses launching Instances oldest first', () => {
    const p = run({
      pods: [pod('a')],
      instances: [
        instance('younger', { phase: 'Pending', created: at(9) }),
        instance('older', { phase: 'Pending', created: at(1) }),
      ],
    });
    expect(claims(p)).toEqual(['a->older']);
  });

  it('does not reuse an Instance that a live pod claims', () => {
    const p = run({
      pods: [pod('running', { claim: 'busy', gated: false, nodeName: 'n1', phase: 'Running' }), pod('a')],
      instances: [instance('busy', { phase: 'Ready' })],
    });
    expect(claims(p)).toEqual(['a->new-1+']);
  });

  it('reuses an Instance whose only claimers are finished or deleted before binding, with a node agent on its node', () => {
    const agent = pod('agent', { class: null, daemonSet: true, gated: false, nodeName: 'n-x', phase: 'Running' });
    const p = run({
      pods: [
        pod('done', { claim: 'x', gated: false, nodeName: 'n-x', phase: 'Succeeded' }),
        pod('never-ran', { claim: 'x', deleting: true }),
        pod('a'),
      ],
      instances: [instance('x', { phase: 'Ready' })],
      onNode: { 'n-x': [agent] },
    });
    expect(claims(p)).toEqual(['a->x']);
  });

  it('reuses an Instance whose node runs an agent whose template carries a claim but no class', () => {
    const agent = pod('agent', {
      class: null,
      claim: 'x',
      daemonSet: true,
      gated: false,
      nodeName: 'n-x',
      phase: 'Running',
    });
    const p = run({ pods: [pod('a')], instances: [instance('x', { phase: 'Ready' })], onNode: { 'n-x': [agent] } });
    expect(claims(p)).toEqual(['a->x']);
  });

  it('keeps an Instance whose claimer was given a DaemonSet owner or the mirror annotation: anyone may write those', () => {
    // Only ipp writes a claim, on a pod it placed; the owner reference is the tenant's, added after.
    for (const forged of [{ daemonSet: true }, { mirror: true }]) {
      const holder = pod('holder', { claim: 'x', gated: false, nodeName: 'n-x', phase: 'Running', ...forged });
      const p = run({
        cls: cls({ isolation: 'Pod' }),
        pods: [holder, pod('a')],
        instances: [instance('x', { phase: 'Ready' })],
        onNode: { 'n-x': [holder] },
      });
      expect(claims(p), JSON.stringify(forged)).toEqual(['a->new-1+']);
    }
  });

  it('keeps an Instance held by a bound pod that is still shutting down', () => {
    const p = run({
      pods: [pod('going', { claim: 'x', gated: false, nodeName: 'n1', phase: 'Running', deleting: true }), pod('a')],
      instances: [instance('x', { phase: 'Ready' })],
    });
    expect(claims(p)).toEqual(['a->new-1+']);
  });

  it('does not reuse a Ready Instance whose node is cordoned, NotReady or gone', () => {
    for (const n of [node('n1', { unschedulable: true }), node('n1', { ready: false }), undefined]) {
      const p = run({ pods: [pod('a')], instances: [instance('x', { phase: 'Ready' })], nodes: n ? { x: n } : {} });
      expect(claims(p)).toEqual(['a->new-1+']);
    }
  });

  it('lets only one pod keep a claimed Instance under Pod isolation; copies of the claim are re-planned', () => {
    const p = run({
      pods: [pod('a', { created: at(1), claim: 'x' }), pod('b', { created: at(2), claim: 'x' })],
      instances: [instance('x', { phase: 'Launched' })],
    });
    expect(claims(p)).toEqual(['b->new-1+']);
    const held = run({
      pods: [
        pod('running', { claim: 'x', gated: false, nodeName: 'n1', phase: 'Running' }),
        pod('copy', { claim: 'x' }),
      ],
      instances: [instance('x', { phase: 'Ready' })],
    });
    expect(claims(held)).toEqual(['copy->new-1+']);
  });

  it("ignores a claim naming another class's Instance", () => {
    const p = plan({
      cls: cls(),
      pods: [pod('a', { claim: 'theirs' })],
      instances: [],
      nodeOf: () => undefined,
      capacityOf: () => undefined,
      newName: () => 'new-1',
      exists: (n) => n === 'theirs',
    });
    expect(claims(p)).toEqual(['a->new-1+']);
  });

  it('recreates, under the same name, the Instance of a pod pinned to it before it vanished', () => {
    const pinned = pod('pinned', { claim: 'gone', gated: false });
    pinned.spec!.nodeSelector = { 'ipp.dev/instance': 'gone' };
    expect(claims(run({ pods: [pinned] }))).toEqual(['pinned->gone+']);
    // While the old one is still being deleted, it waits.
    expect(claims(run({ pods: [pinned], instances: [instance('gone', { phase: 'Ready', deleting: true })] }))).toEqual(
      [],
    );
  });

  it('counts pods it may not place, but does not place them', () => {
    const p = plan({
      cls: cls(),
      pods: [pod('elsewhere', { ns: 'other' }), pod('a')],
      instances: [],
      nodeOf: () => undefined,
      capacityOf: () => undefined,
      newName: () => 'new-1',
      mayPlace: (x) => x.metadata!.namespace !== 'other',
    });
    expect(claims(p)).toEqual(['a->new-1+']);
  });

  it('never reuses when spec.reuse is false', () => {
    const p = run({ cls: cls({ reuse: false }), pods: [pod('a')], instances: [instance('idle', { phase: 'Ready' })] });
    expect(claims(p)).toEqual(['a->new-1+']);
  });

  it('never reuses a deleting or Terminated Instance', () => {
    const p = run({
      pods: [pod('a')],
      instances: [instance('gone', { phase: 'Ready', deleting: true }), instance('dead', { phase: 'Terminated' })],
    });
    expect(claims(p)).toEqual(['a->new-1+']);
  });
});

describe('Class isolation', () => {
  const klass = cls({ isolation: 'Class' });

  it('packs pods by their requests, filling Instances created in the same batch', () => {
    const pods = ['a', 'b', 'c', 'd', 'e'].map((n, i) => pod(n, { created: at(i), cpu: '400m', memory: '1Gi' }));
    const p = run({ cls: klass, pods, capacity: () => cap(1000) });
    expect(claims(p)).toEqual(['a->new-1+', 'b->new-1', 'c->new-2+', 'd->new-2', 'e->new-3+']);
  });

  it('packs by memory and by pod count too', () => {
    const byMemory = run({
      cls: klass,
      pods: ['a', 'b', 'c'].map((n, i) => pod(n, { created: at(i), cpu: '1m', memory: '3Gi' })),
      capacity: () => cap(64_000, 110, 6 * GiB),
    });
    expect(claims(byMemory)).toEqual(['a->new-1+', 'b->new-1', 'c->new-2+']);
    const byCount = run({
      cls: klass,
      pods: ['a', 'b', 'c'].map((n, i) => pod(n, { created: at(i) })),
      capacity: () => cap(64_000, 2),
    });
    expect(claims(byCount)).toEqual(['a->new-1+', 'b->new-1', 'c->new-2+']);
  });

  it('packs by devices and ephemeral storage where the node reports them, one device pod at a time where not', () => {
    const gpuPod = (name: string, minute: number) => {
      const p = pod(name, { created: at(minute), cpu: '1' });
      p.spec!.containers[0]!.resources!.requests!['nvidia.com/gpu'] = '1';
      return p;
    };
    const input = {
      cls: klass,
      pods: [gpuPod('a', 1), gpuPod('b', 2), gpuPod('c', 3)],
      instances: [instance('x', { phase: 'Ready' })],
      nodes: { x: node('n1') },
    };
    const gpus = (n?: number): Resources => ({
      ...cap(64_000),
      ...(n !== undefined ? { other: { 'nvidia.com/gpu': n } } : {}),
    });
    // The node has two GPUs: two pods on it, the third elsewhere (by CPU alone all three fit).
    expect(claims(run({ ...input, capacity: () => gpus(2) }))).toEqual(['a->x', 'b->x', 'c->new-1+']);
    // Its device plugin has not reported yet (nor does the catalog know the type's devices): one each.
    expect(claims(run({ ...input, capacity: () => gpus() }))).toEqual(['a->x', 'b->new-1+', 'c->new-2+']);
    const storagePod = (name: string, minute: number) => {
      const p = pod(name, { created: at(minute), cpu: '1' });
      p.spec!.containers[0]!.resources!.requests!['ephemeral-storage'] = '30Gi';
      return p;
    };
    const disk = { ...cap(64_000), other: { 'ephemeral-storage': 50 * GiB } };
    expect(claims(run({ ...input, pods: [storagePod('a', 1), storagePod('b', 2)], capacity: () => disk }))).toEqual([
      'a->x',
      'b->new-1+',
    ]);
  });

  it('counts pods already claiming an Instance against its capacity', () => {
    const p = run({
      cls: klass,
      pods: [
        pod('running', { claim: 'x', gated: false, nodeName: 'n1', phase: 'Running', cpu: '600m' }),
        pod('a', { created: at(1), cpu: '400m' }),
        pod('b', { created: at(2), cpu: '400m' }),
      ],
      instances: [instance('x', { phase: 'Ready' })],
      capacity: () => cap(1000),
    });
    expect(claims(p)).toEqual(['a->x', 'b->new-1+']);
  });

  it('counts DaemonSet pods on the node against capacity, but not as occupants', () => {
    const ds = pod('agent', {
      class: null,
      daemonSet: true,
      gated: false,
      nodeName: 'n1',
      phase: 'Running',
      cpu: '500m',
    });
    const input = {
      cls: klass,
      pods: [pod('a', { created: at(1), cpu: '400m' }), pod('b', { created: at(2), cpu: '400m' })],
      instances: [instance('x', { phase: 'Ready' })],
      nodes: { x: node('n1') },
      onNode: { n1: [ds] },
      capacity: () => cap(1000),
    };
    expect(claims(run(input))).toEqual(['a->x', 'b->new-1+']);
    // Under Pod isolation the same DaemonSet pod does not make the instance busy.
    expect(claims(run({ ...input, cls: cls({ isolation: 'Pod' }) }))).toEqual(['a->x', 'b->new-1+']);
  });

  it('shares Instances even when spec.reuse is false', () => {
    const p = run({
      cls: cls({ isolation: 'Class', reuse: false }),
      pods: [pod('a', { created: at(1) }), pod('b', { created: at(2) })],
      capacity: () => cap(1000),
    });
    expect(claims(p)).toEqual(['a->new-1+', 'b->new-1']);
  });

  it('puts one pod per Instance while the capacity is unknown', () => {
    const p = run({
      cls: klass,
      pods: [
        pod('a', { created: at(1), cpu: '1m' }),
        pod('b', { created: at(2), cpu: '1m' }),
        pod('c', { created: at(3), cpu: '1m' }),
      ],
      instances: [instance('x', { phase: 'Ready' })],
      capacity: () => undefined,
    });
    expect(claims(p)).toEqual(['a->x', 'b->new-1+', 'c->new-2+']);
  });
});

describe('claimed pods', () => {
  const readyNode = node('n1');

  it('leaves a pod claiming a Ready Instance alone: the placement controller places it', () => {
    const x = instance('x', { phase: 'Ready', providerID: 'sim:///n1' });
    const p = run({ pods: [pod('a', { claim: 'x' })], instances: [x], nodes: { x: readyNode } });
    expect(p.claims).toEqual([]);
  });

  it('makes no new claim while the node is not Ready or unschedulable, or the Instance not Ready', () => {
    const cases: [string, Instance, V1Node | undefined][] = [
      ['node NotReady', instance('x', { phase: 'Ready' }), node('n1', { ready: false })],
      ['node cordoned', instance('x', { phase: 'Ready' }), node('n1', { unschedulable: true })],
      ['no node yet', instance('x', { phase: 'Ready' }), undefined],
      ['Instance Registered', instance('x', { phase: 'Registered' }), readyNode],
      ['Instance Launched', instance('x', { phase: 'Launched' }), undefined],
    ];
    for (const [what, x, n] of cases) {
      const p = run({ pods: [pod('a', { claim: 'x' })], instances: [x], nodes: n ? { x: n } : {} });
      expect({ what, claims: claims(p) }).toEqual({ what, claims: [] });
    }
  });

  it('recreates a missing claimed Instance under the same name', () => {
    const p = run({ pods: [pod('a', { claim: 'lost' })] });
    expect(claims(p)).toEqual(['a->lost+']);
  });

  it('reads a claim no Instance could be named as no claim: nothing to create, nothing counted against maxInstances', () => {
    // '<none>' written by a tenant past admission would otherwise be an Instance to create (refused by
    // the API server on every pass) holding a place of the class's limit.
    const p = run({
      cls: cls({ maxInstances: 1 }),
      pods: [pod('a', { created: at(1), claim: '<none>' }), pod('b', { created: at(2) })],
    });
    expect(claims(p)).toEqual(['a->new-1+']);
    expect(names(p.blockedByMaxInstances)).toEqual(['b']);
  });

  it('recreates a missing Instance claimed by several pods once, counting it once against maxInstances', () => {
    const p = run({
      cls: cls({ isolation: 'Class', maxInstances: 1 }),
      pods: [pod('a', { created: at(1), claim: 'lost' }), pod('b', { created: at(2), claim: 'lost' })],
      capacity: () => cap(1000),
    });
    expect(claims(p)).toEqual(['a->lost+']);
    expect(p.blockedByMaxInstances).toEqual([]);
  });

  it('re-plans a pod whose Instance is being deleted or Terminated', () => {
    const p = run({
      pods: [pod('a', { created: at(1), claim: 'going' }), pod('b', { created: at(2), claim: 'dead' })],
      instances: [
        instance('going', { phase: 'Ready', deleting: true }),
        instance('dead', { phase: 'Terminated' }),
        instance('idle', { phase: 'Ready' }),
      ],
      nodes: { going: readyNode, idle: node('n2') },
    });
    expect(claims(p)).toEqual(['a->idle', 'b->new-1+']);
  });

  it("re-plans a waiting pod whose Ready Instance's node lost its taints, and reuses no such Instance", () => {
    const p = run({
      pods: [pod('a', { created: at(1), claim: 'open' }), pod('b', { created: at(2) })],
      instances: [instance('open', { phase: 'Ready' }), instance('open-idle', { phase: 'Ready' })],
      nodes: { open: node('n1', { untainted: true }), 'open-idle': node('n2', { untainted: true }) },
    });
    expect(claims(p)).toEqual(['a->new-1+', 'b->new-2+']);
  });
});

describe('a node a pod left without being seen to end', () => {
  it('is not reused under Pod isolation (its pod may still run there), and is under Class isolation', () => {
    const input = { pods: [pod('next')], instances: [instance('idle', { phase: 'Ready' })], vacated: ['n-idle'] };
    expect(claims(run(input))).toEqual(['next->new-1+']);
    expect(claims(run({ ...input, vacated: [] }))).toEqual(['next->idle']);
    expect(claims(run({ ...input, cls: cls({ isolation: 'Class' }) }))).toEqual(['next->idle']);
  });
});

describe('maxInstances', () => {
  it('blocks new Instances beyond the limit, counting live Instances and those created in the batch', () => {
    const p = run({
      cls: cls({ maxInstances: 3 }),
      pods: [
        pod('running', { claim: 'busy', gated: false, nodeName: 'n1', phase: 'Running' }),
        pod('a', { created: at(1) }),
        pod('b', { created: at(2) }),
        pod('c', { created: at(3) }),
      ],
      // The deleting one does not count against the limit.
      instances: [
        instance('busy', { phase: 'Ready' }),
        instance('idle', { phase: 'Launched' }),
        instance('gone', { phase: 'Ready', deleting: true }),
      ],
    });
    expect(claims(p)).toEqual(['a->idle', 'b->new-1+']);
    expect(names(p.blockedByMaxInstances)).toEqual(['c']);
  });

  it('serves a full class from the longest waiting: a pod a queue held counts from its release, not its creation', () => {
    const p = run({
      cls: cls({ maxInstances: 1 }),
      // "aged" was created first behind a gate of its owner's and let go after "fair" was created.
      pods: [pod('aged', { created: at(1) }), pod('fair', { created: at(5) })],
      released: { aged: at(9) },
    });
    expect(claims(p)).toEqual(['fair->new-1+']);
    expect(names(p.blockedByMaxInstances)).toEqual(['aged']);
  });

  it('gives a pod whose claimed Instance is missing a free instance when the class is full, not a wait for a teardown', () => {
    const p = run({
      cls: cls({ maxInstances: 2 }),
      // Its claim was written, then the controller died before the create; a refill took the last place.
      pods: [
        pod('running', { claim: 'busy', gated: false, nodeName: 'n1', phase: 'Running' }),
        pod('a', { claim: 'lost' }),
      ],
      instances: [instance('busy', { phase: 'Ready' }), instance('idle', { phase: 'Launched' })],
    });
    expect(claims(p)).toEqual(['a->idle']);
    expect(p.blockedByMaxInstances).toEqual([]);
  });

  it('counts Instances created but not cached yet (a warm-pool refill in flight) against the limit', () => {
    const p = run({
      cls: cls({ maxInstances: 2 }),
      pods: [pod('running', { claim: 'busy', gated: false, nodeName: 'n1', phase: 'Running' }), pod('a')],
      instances: [instance('busy', { phase: 'Ready' })],
      creating: ['refill'],
    });
    expect(claims(p)).toEqual([]);
    expect(names(p.blockedByMaxInstances)).toEqual(['a']);
  });

  it('counts a claimed Instance whose create is in flight once, not as in flight and recreated', () => {
    const p = run({
      cls: cls({ maxInstances: 2 }),
      pods: [pod('a', { created: at(1), claim: 'fresh' }), pod('b', { created: at(2) })],
      creating: ['fresh'],
    });
    expect(claims(p)).toEqual(['a->fresh+', 'b->new-1+']);
    expect(p.blockedByMaxInstances).toEqual([]);
  });

  it('blocks recreating a missing claimed Instance when at the limit', () => {
    const p = run({
      cls: cls({ maxInstances: 1 }),
      pods: [
        pod('running', { claim: 'busy', gated: false, nodeName: 'n1', phase: 'Running' }),
        pod('a', { claim: 'lost' }),
      ],
      instances: [instance('busy', { phase: 'Ready' })],
    });
    expect(claims(p)).toEqual([]);
    expect(names(p.blockedByMaxInstances)).toEqual(['a']);
  });

  it('still reuses an idle Instance at the limit', () => {
    const p = run({
      cls: cls({ maxInstances: 1 }),
      pods: [pod('a'), pod('b', { created: at(5) })],
      instances: [instance('idle', { phase: 'Ready' })],
    });
    expect(claims(p)).toEqual(['a->idle']);
    expect(names(p.blockedByMaxInstances)).toEqual(['b']);
  });
});

describe('which pods and in which order', () => {
  it('ignores pods that do not await placement', () => {
    const p = run({
      pods: [
        pod('ungated', { gated: false }),
        pod('bound', { nodeName: 'n1' }),
        pod('succeeded', { phase: 'Succeeded' }),
        pod('failed', { phase: 'Failed' }),
        pod('deleting', { deleting: true }),
        pod('unlabelled', { class: null }),
      ],
    });
    expect(p).toEqual({
      claims: [],
      blockedByMaxInstances: [],
      stranded: [],
      unfit: [],
      zoneless: [],
    });
  });

  it('launches nothing for a pod another scheduling gate still holds (a queue admits it later); plans it once lifted', () => {
    const queued = pod('queued');
    queued.spec!.schedulingGates = [{ name: 'kueue.x-k8s.io/admission' }, ...queued.spec!.schedulingGates!];
    expect(claims(run({ pods: [queued] }))).toEqual([]);
    queued.spec!.schedulingGates = queued.spec!.schedulingGates!.slice(1);
    expect(claims(run({ pods: [queued] }))).toEqual(['queued->new-1+']);
  });

  it('plans pods held by schedulerName ipp without a gate', () => {
    expect(claims(run({ pods: [pod('a', { gated: false, schedulerName: 'ipp' })] }))).toEqual(['a->new-1+']);
  });

  it('serves pods by creationTimestamp, then namespace/name', () => {
    const p = run({
      cls: cls({ maxInstances: 2 }),
      pods: [pod('late', { created: at(9) }), pod('b', { created: at(1) }), pod('a', { created: at(1) })],
    });
    expect(claims(p)).toEqual(['a->new-1+', 'b->new-2+']);
    expect(names(p.blockedByMaxInstances)).toEqual(['late']);
  });

  it('orders Date timestamps (as typed list calls return them) by time, mixed with strings (watch events)', () => {
    // Sunday 7th is older than Monday 8th; their Date.toString() forms sort the other way round.
    const p = run({
      cls: cls({ maxInstances: 2 }),
      pods: [
        pod('monday', { created: new Date('2024-01-08T00:00:00Z') }),
        pod('sunday', { created: new Date('2024-01-07T00:00:00Z') }),
        pod('tuesday', { created: '2024-01-09T00:00:00Z' }),
      ],
    });
    expect(claims(p)).toEqual(['sunday->new-1+', 'monday->new-2+']);
    expect(names(p.blockedByMaxInstances)).toEqual(['tuesday']);
  });
});

describe('stranded pods', () => {
  /** A pod pinned by name to `nodeName`, unbound, unschedulable since `since`. */
  const pinned = (nodeName: string, since = '2024-01-01T00:50:00Z', message = '0/3 nodes are available') =>
    pinByName(pod('web', { claim: 'metal-x', gated: false }), nodeName, new Date(since), message);
  const ready = instance('metal-x', { phase: 'Ready' });

  it('are pods whose Instance is gone', () => {
    expect(run({ pods: [pinned('n-metal-x')] }).stranded.map((s) => s.why)).toEqual(['its Instance metal-x is gone']);
  });

  it("are pods whose Instance's node was replaced by another", () => {
    const p = run({ pods: [pinned('n-old')], instances: [ready] });
    expect(p.stranded.map((s) => s.why)).toEqual(['node n-old of its Instance metal-x is gone']);
  });

  it('are pods the scheduler cannot fit on their node, with its reason', () => {
    const p = run({ pods: [pinned('n-metal-x', undefined, 'Insufficient cpu')], instances: [ready] });
    expect(p.stranded.map((s) => s.why)).toEqual([
      'kube-scheduler cannot place it on node n-metal-x: Insufficient cpu',
    ]);
  });

  it('are not pods unschedulable only for a moment (a node blinking NotReady), nor pods never judged', () => {
    expect(run({ pods: [pinned('n-old', '2024-01-01T00:59:30Z')], instances: [ready] }).stranded).toEqual([]);
    const judged = pinned('n-old');
    judged.status = { phase: 'Pending' };
    expect(run({ pods: [judged], instances: [ready] }).stranded).toEqual([]);
  });

  it('are timed from the pin, not from the pod’s creation (the condition keeps the time the gated pod was made)', () => {
    // Created (and gated, PodScheduled=False) at 00:00; pinned at 00:59:30 once its node was Ready;
    // refused at once (the node's not-ready taint not lifted yet): 30 s of refusal, not an hour.
    const waitedLong = pinned('n-metal-x', '2024-01-01T00:00:00Z');
    waitedLong.metadata!.annotations = {
      ...waitedLong.metadata!.annotations,
      [POD_PINNED_AT_ANNOTATION]: '2024-01-01T00:59:30Z',
    };
    expect(run({ pods: [waitedLong], instances: [ready] }).stranded).toEqual([]);
    waitedLong.metadata!.annotations[POD_PINNED_AT_ANNOTATION] = '2024-01-01T00:50:00Z';
    expect(run({ pods: [waitedLong], instances: [ready] }).stranded).toHaveLength(1);
  });

  it('are not bound pods', () => {
    const bound = pinned('n-old');
    bound.spec!.nodeName = 'n-old';
    expect(run({ pods: [bound], instances: [ready] }).stranded).toEqual([]);
  });
});

describe('host isolation', () => {
  it('never reuses an instance launched under a weaker level than the class now asks for', () => {
    const idleVm = instance('vm-1', { phase: 'Ready', providerID: 'sim:///vm-1', idleSince: '2024-01-01T00:00:00Z' });
    idleVm.status!.hostIsolation = { level: 'VM', smt: 'On' };
    const metal = cls({ hostIsolation: 'BareMetal', instanceTypes: ['sim.metal'] });
    expect(claims(run({ cls: metal, pods: [pod('a')], instances: [idleVm] }))).toEqual(['a->new-1+']);
    expect(claims(run({ pods: [pod('a')], instances: [idleVm] }))).toEqual(['a->vm-1']);
  });
});

describe('warm pool', () => {
  const warm = (name: string, phase: 'Ready' | 'Launched' = 'Ready', created = at(0)) =>
    instance(name, { phase, warm: true, created });
  const takes = (p: Plan) =>
    p.claims.map((c) => `${c.pod.metadata!.name}->${c.instance}${c.create ? '+' : ''}${c.warm ? ' (warm)' : ''}`);

  it('takes a warm Ready instance first, ahead of an older idle one and of warm ones still booting', () => {
    const p = run({
      pods: [pod('a', { created: at(1) })],
      instances: [
        instance('idle', { phase: 'Ready', created: at(0) }),
        warm('booting', 'Launched'),
        warm('w', 'Ready', at(5)),
      ],
    });
    expect(takes(p)).toEqual(['a->w (warm)']);
  });

  it('gives a burst larger than the pool the warm ones first, then new instances', () => {
    const p = run({
      pods: [pod('a', { created: at(1) }), pod('b', { created: at(2) }), pod('c', { created: at(3) })],
      instances: [warm('w1'), warm('w2', 'Ready', at(1))],
    });
    expect(takes(p)).toEqual(['a->w1 (warm)', 'b->w2 (warm)', 'c->new-1+']);
  });

  it('takes a warm instance still booting before creating a new one', () => {
    const p = run({ pods: [pod('a')], instances: [warm('booting', 'Launched')] });
    expect(takes(p)).toEqual(['a->booting (warm)']);
  });

  it('takes warm instances even where reuse is off (never used): reuse: false and one-shot', () => {
    for (const spec of [{ reuse: false }, { oneShot: true }]) {
      const p = run({
        cls: cls(spec),
        pods: [pod('a'), pod('b')],
        instances: [warm('w'), instance('idle', { phase: 'Ready' })],
      });
      expect(takes(p)).toEqual(['a->w (warm)', 'b->new-1+']);
    }
  });

  it('never gives one warm instance to two pods under Pod isolation', () => {
    const p = run({ pods: [pod('a', { created: at(1) }), pod('b', { created: at(2) })], instances: [warm('w')] });
    expect(takes(p)).toEqual(['a->w (warm)', 'b->new-1+']);
  });

  it('does not place a pod on an instance still in the pool: asks to take it first', () => {
    const p = run({ pods: [pod('a', { claim: 'w' })], instances: [warm('w')] });
    expect(takes(p)).toEqual(['a->w (warm)']);
  });

  it('counts warm instances against maxInstances', () => {
    const p = run({
      cls: cls({ maxInstances: 2 }),
      pods: [pod('a', { created: at(1) }), pod('b', { created: at(2) }), pod('c', { created: at(3) })],
      instances: [warm('w1'), instance('busy', { phase: 'Ready' })],
      onNode: { 'n-busy': [pod('running', { nodeName: 'n-busy', gated: false, phase: 'Running' })] },
    });
    expect(takes(p)).toEqual(['a->w1 (warm)']);
    expect(names(p.blockedByMaxInstances)).toEqual(['b', 'c']);
  });
});

describe('one-shot', () => {
  it('never reuses an idle instance, even with reuse left at its default', () => {
    const p = run({ cls: cls({ oneShot: true }), pods: [pod('a')], instances: [instance('done', { phase: 'Ready' })] });
    expect(claims(p)).toEqual(['a->new-1+']);
  });
});

describe('zones of volumes and node affinity', () => {
  const needs = (...zones: string[]): PodZones => ({ zones, why: 'PersistentVolume v (claim data) needs zone c' });
  const inZone = (name: string, zone: string, o: Parameters<typeof instance>[1] = {}) => {
    const i = instance(name, { phase: 'Ready', providerID: `sim:///${zone}/${name}`, ...o });
    i.status!.zone = zone;
    return i;
  };

  it('records the zones a pod needs on the Instance created for it', () => {
    const p = run({ cls: cls({ zones: ['a', 'b', 'c'] }), pods: [pod('p')], zones: { p: needs('b') } });
    expect(p.claims).toEqual([expect.objectContaining({ instance: 'new-1', create: true, zones: ['b'] })]);
  });

  it('launches nothing for a pod whose zones the class does not offer, and says which', () => {
    const p = run({ cls: cls({ zones: ['a', 'b'] }), pods: [pod('p'), pod('q')], zones: { p: needs() } });
    expect(p.zoneless).toEqual([
      {
        pod: expect.objectContaining({ metadata: expect.objectContaining({ name: 'p' }) }),
        why: needs().why,
        offered: ['a', 'b'],
      },
    ]);
    expect(claims(p)).toEqual(['q->new-1+']);
  });

  it('reuses an idle instance only in an allowed zone', () => {
    const p = run({
      cls: cls({ zones: ['a', 'b'] }),
      pods: [pod('p')],
      instances: [inZone('in-a', 'a'), inZone('in-b', 'b')],
      zones: { p: needs('b') },
    });
    expect(claims(p)).toEqual(['p->in-b']);
  });

  it('never takes an instance still to launch that may land outside its zones', () => {
    const p = run({
      cls: cls({ zones: ['a', 'b'] }),
      pods: [pod('p')],
      instances: [instance('anywhere', { phase: 'Pending' })],
      zones: { p: needs('b') },
    });
    expect(claims(p)).toEqual(['p->new-1+']);
  });

  it('under Class isolation, shares an instance only between pods with compatible zones', () => {
    const p = run({
      cls: cls({ isolation: 'Class', zones: ['a', 'b'] }),
      pods: [
        pod('needs-b', { created: at(1) }),
        pod('any', { created: at(2) }),
        pod('needs-a', { created: at(3) }),
        pod('also-b', { created: at(4) }),
      ],
      capacity: () => cap(64_000),
      zones: { 'needs-b': needs('b'), 'needs-a': needs('a'), 'also-b': needs('a', 'b') },
    });
    expect(claims(p)).toEqual(['needs-b->new-1+', 'any->new-1', 'needs-a->new-2+', 'also-b->new-1']);
    expect(p.claims.map((c) => c.zones)).toEqual([['b'], undefined, ['a'], undefined]);
  });

  it('recreates a missing claimed Instance with the zones its pod needs', () => {
    const p = run({ cls: cls({ zones: ['a', 'b'] }), pods: [pod('p', { claim: 'gone' })], zones: { p: needs('a') } });
    expect(p.claims).toEqual([expect.objectContaining({ instance: 'gone', create: true, zones: ['a'] })]);
  });
});

describe('claimStands', () => {
  const view = (pods: V1Pod[], instances: Instance[], nodes: V1Node[] = []) => {
    const c = new FakeCluster();
    c.podList = pods;
    c.instanceList = instances;
    c.nodeList = nodes;
    return c;
  };
  const x = instance('x', { phase: 'Ready', providerID: 'sim:///n1' });
  const n1 = node('n1');

  it('holds for a sole claimer of a live Instance of its class, and for nothing else', () => {
    const a = pod('a', { claim: 'x' });
    const cases: [string, V1Pod[], Instance[], V1Node[], boolean][] = [
      ['sole claimer, node Ready', [a], [x], [n1], true],
      ['sole claimer, Instance still launching', [a], [instance('x', { phase: 'Pending' })], [], true],
      ['sole claimer, its node lost its taints', [a], [x], [node('n1', { untainted: true })], false],
      ['no claim', [pod('a')], [x], [n1], false],
      ['Instance missing', [a], [], [], false],
      ['Instance of another class', [a], [instance('x', { phase: 'Ready', class: 'other' })], [], false],
      ['Instance being deleted', [a], [instance('x', { phase: 'Ready', deleting: true })], [], false],
      ['Instance still warm', [a], [instance('x', { phase: 'Ready', warm: true })], [], false],
      ['another pod pinned to it', [a, pod('b', { claim: 'x', gated: false })], [x], [n1], false],
      ['another claimer waiting too', [a, pod('b', { claim: 'x', created: at(1) })], [x], [n1], false],
      [
        'a workload runs on its node',
        [a, pod('w', { class: null, nodeName: 'n1', phase: 'Running' })],
        [x],
        [n1],
        false,
      ],
      [
        'only a DaemonSet pod on its node',
        [a, pod('d', { class: null, nodeName: 'n1', daemonSet: true })],
        [x],
        [n1],
        true,
      ],
    ];
    for (const [what, pods, instances, nodes, stands] of cases)
      expect({ what, stands: claimStands(pods[0]!, cls(), view(pods, instances, nodes)) }).toEqual({ what, stands });
  });

  it('holds under Class isolation for any claimer of a live Instance', () => {
    const pods = [pod('a', { claim: 'x' }), pod('b', { claim: 'x', gated: false, nodeName: 'n1' })];
    expect(claimStands(pods[0]!, cls({ isolation: 'Class' }), view(pods, [x], [n1]))).toBe(true);
  });

  it('never skips a decision plan() would make: a pod whose claim stands gets no claim from plan()', () => {
    const worlds: [V1Pod[], Instance[]][] = [
      [[pod('a', { claim: 'x' })], [x]],
      [
        [pod('a', { claim: 'x' }), pod('b', { created: at(1) })],
        [x, instance('idle', { phase: 'Ready' })],
      ],
      [[pod('a', { claim: 'x' }), pod('b', { claim: 'x', created: at(1) })], [x]],
      [[pod('a', { claim: 'w' })], [instance('w', { phase: 'Ready', warm: true })]],
      [[pod('a', { claim: 'gone' })], []],
    ];
    for (const [pods, instances] of worlds) {
      const decided = run({ pods, instances, nodes: { x: n1 } });
      const v = view(pods, instances, [n1]);
      for (const p of pods.filter((p) => claimStands(p, cls(), v)))
        expect(decided.claims.filter((c) => c.pod === p)).toEqual([]);
    }
  });
});

describe('planning from the indexes', () => {
  /** A small deterministic generator, so a failing world can be rebuilt from its seed. */
  const random = (seed: number) => () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;

  it('decides over the unbound pods whose claims do not stand, reading loads through the indexes, exactly as over the whole class', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = random(seed);
      const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
      const klass = cls({ isolation: pick(['Pod', 'Class'] as const), ...(r() < 0.2 ? { maxInstances: 6 } : {}) });
      const world = new FakeCluster();
      world.instanceList = Array.from({ length: 1 + Math.floor(r() * 8) }, (_, i) => {
        const phase = pick(['Ready', 'Ready', 'Pending', 'Launched'] as const);
        return instance(`i${i}`, {
          phase,
          created: at(i),
          warm: r() < 0.2,
          deleting: r() < 0.1,
          ...(phase === 'Ready' ? { providerID: `sim:///n-i${i}` } : {}),
        });
      });
      // Some Ready instances' nodes are not cached yet.
      for (const i of world.instanceList)
        if (i.status?.providerID && r() < 0.85) world.nodeList.push(node(`n-${i.metadata.name}`));
      world.podList = Array.from({ length: Math.floor(r() * 12) }, (_, k) => {
        const inst = r() < 0.7 ? pick(world.instanceList).metadata.name! : undefined;
        const claim = inst ?? (r() < 0.2 ? 'gone' : undefined);
        // Bound to its instance's node, cached or not (then only the claim says it is there).
        const bound = !!inst && r() < 0.5;
        // Unbound with a claim: pinned already (by name, and by the instance label), some of them
        // refused by the scheduler long enough to count as stranded.
        const pinned = !bound && !!claim && r() < 0.3;
        const p = pod(`p${k}`, {
          created: at(10 + k),
          ...(claim ? { claim } : {}),
          ...(bound
            ? { gated: false, nodeName: `n-${inst}`, phase: pick(['Running', 'Running', 'Succeeded'] as const) }
            : {}),
          ...(pinned ? { gated: false } : {}),
          // Another class's pod claiming one of ours (a claim copied or forged), a mirror pod (the
          // kubelet's, so always bound), one being deleted.
          ...(r() < 0.1 ? { class: 'other' } : {}),
          ...(bound && r() < 0.1 ? { mirror: true } : {}),
          ...(r() < 0.1 ? { deleting: true } : {}),
          cpu: pick(['1', '4', '30']),
        });
        if (pinned) {
          p.spec!.nodeSelector = { [NODE_INSTANCE_LABEL]: claim };
          pinByName(p, `n-${claim}`, r() < 0.5 ? new Date(pick([at(0), at(59)])) : undefined);
        }
        return p;
      });
      // DaemonSet pods on the nodes: load, never occupants.
      for (const n of world.nodeList)
        if (r() < 0.3)
          world.podList.push(
            pod(`ds-${n.metadata!.name}`, {
              class: null,
              daemonSet: true,
              gated: false,
              nodeName: n.metadata!.name!,
              phase: 'Running',
            }),
          );
      const decide = (pods: readonly V1Pod[], indexes?: Pick<PlanInput, 'claimants' | 'claimHeld'>) => {
        let n = 0;
        const decided = plan({
          cls: klass,
          pods,
          ...indexes,
          instances: world.instanceList,
          nodeOf: (i) => world.nodeByProviderID(i.status?.providerID),
          podsOnNode: (name) => world.podsOnNode(name),
          capacityOf: () => cap(32000),
          newName: () => `new-${++n}`,
          now: Date.parse('2024-01-01T01:00:00Z'),
        });
        return {
          seed,
          claims: claims(decided),
          blocked: names(decided.blockedByMaxInstances),
          stranded: decided.stranded.map(({ pod, why }) => `${pod.metadata!.name}: ${why}`),
        };
      };
      const whole = decide(world.podsOfClass(CLASS));
      const indexes = {
        claimants: (i: string) => world.podsClaiming(CLASS, i),
        claimHeld: (i: string) => world.claimHeld(CLASS, i),
      };
      const unbound = world.unboundPodsOfClass(CLASS);
      expect(decide(unbound, indexes), 'the unbound pods').toEqual(whole);
      const undecided = unbound.filter((p) => !awaitsPlacement(p) || !claimStands(p, klass, world));
      expect(decide(undecided, indexes), 'the pods whose claims do not stand').toEqual(whole);
    }
  });
});
