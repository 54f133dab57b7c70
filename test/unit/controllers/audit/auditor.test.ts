// The auditor audits the nodes that pod and node events touch, from the pods-by-node index, plus a
// slow sweep of every node; each violation is reported once, and a node waiting for a DaemonSet's
// verdict is audited again when the verdict comes, without any event.
import type { V1DaemonSet, V1Node, V1Pod } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { Auditor, type AuditorOptions } from '../../../../src/controllers/audit/controller.ts';
import type { IppEvent } from '../../../../src/kube/events.ts';
import { createLogger } from '../../../../src/log.ts';
import { Metrics } from '../../../../src/metrics/metrics.ts';
import { node, pod } from '../fixtures.ts';

const on = (nodeName: string, p: V1Pod): V1Pod => ({ ...p, spec: { ...p.spec!, nodeName } });

/** Pods and ipp nodes as the caches hold them, with the reads the auditor makes counted. */
class World {
  pods: V1Pod[] = [];
  nodeList: V1Node[] = [];
  readonly podsOnNodeCalls: string[] = [];
  readonly nodes = { list: () => this.nodeList };
  podsOnNode(n: string) {
    this.podsOnNodeCalls.push(n);
    return this.pods.filter((p) => p.spec?.nodeName === n);
  }
  node(name: string) {
    return this.nodeList.find((n) => n.metadata?.name === name);
  }
  nodesWithPods() {
    return [...new Set(this.pods.flatMap((p) => (p.spec?.nodeName ? [p.spec.nodeName] : [])))];
  }
  /** Node names Instances registered with. */
  instanceNodes: string[] = [];
  /** The isolation each node's Instance was created under. */
  isolation: Record<string, string> = {};
  instanceOnNode(n: string) {
    if (this.isolation[n]) return { node: n, spec: { class: 'metal', isolation: this.isolation[n] } };
    return this.instanceNodes.includes(n) ? { node: n, spec: { class: 'metal' } } : undefined;
  }
}

async function gauge(m: Metrics, name: string): Promise<Record<string, number>> {
  const { values } = await m.registry.getSingleMetric(name)!.get();
  return Object.fromEntries(values.map((v) => [Object.values(v.labels).join('/'), v.value]));
}

const stops: AbortController[] = [];
afterEach(() => stops.splice(0).forEach((s) => s.abort()));

function start(world: World, o: AuditorOptions = {}) {
  const events: IppEvent[] = [];
  const metrics = new Metrics({ defaultMetrics: false });
  const auditor = new Auditor(
    world,
    { record: (...es: IppEvent[]) => void events.push(...es) },
    metrics,
    createLogger('silent'),
    { batchDelayMs: 0, ...o },
  );
  const stop = new AbortController();
  stops.push(stop);
  void auditor.run(stop.signal);
  const reported = () => events.filter((e) => e.regarding.kind === 'Pod').map((e) => e.regarding.name);
  return { auditor, events, metrics, reported, stop };
}

describe('Auditor', () => {
  it('audits only the nodes events touch between sweeps, each violation once', async () => {
    const world = new World();
    world.nodeList = [node('n1', { class: 'metal' }), node('n2', { class: 'metal' })];
    const { auditor, metrics, reported } = start(world);
    await auditor.settled();
    expect(reported()).toEqual([]);

    // Both slip in; only n1's pod event arrives.
    world.pods.push(on('n1', pod('intruder-1', { class: null, phase: 'Running' })));
    world.pods.push(on('n2', pod('intruder-2', { class: null, phase: 'Running' })));
    world.podsOnNodeCalls.length = 0;
    auditor.touch('n1');
    auditor.touch('n1');
    await auditor.settled();
    expect(world.podsOnNodeCalls).toEqual(['n1']);
    expect(reported()).toEqual(['intruder-1']);
    expect(await gauge(metrics, 'ipp_isolation_violations')).toEqual({ n1: 1 });

    // The sweep finds the one no event announced; n1's is not reported again.
    auditor.sweep();
    await auditor.settled();
    expect(reported()).toEqual(['intruder-1', 'intruder-2']);
    expect(await gauge(metrics, 'ipp_isolation_violations')).toEqual({ n1: 1, n2: 1 });

    // Gone: its delete event clears the node's gauge.
    world.pods = world.pods.filter((p) => p.metadata!.name !== 'intruder-1');
    auditor.touch('n1');
    await auditor.settled();
    expect(await gauge(metrics, 'ipp_isolation_violations')).toEqual({ n2: 1 });
    expect(reported()).toEqual(['intruder-1', 'intruder-2']);
  });

  it('reports a second pod on a node whose Instance was made under Pod isolation; not under Class, nor from before the field', async () => {
    const world = new World();
    // n3's Instance predates the recorded isolation: not judged.
    world.isolation = { n1: 'Pod', n2: 'Class' };
    world.nodeList = [node('n1', { class: 'metal' }), node('n2', { class: 'packed' }), node('n3', { class: 'metal' })];
    const { auditor, events, reported } = start(world);
    world.pods.push(on('n1', pod('first', { class: 'metal', phase: 'Running', created: '2024-01-01T00:00:00Z' })));
    world.pods.push(on('n1', pod('second', { class: 'metal', phase: 'Running', created: '2024-01-01T00:05:00Z' })));
    world.pods.push(on('n2', pod('a', { class: 'packed', phase: 'Running' })));
    world.pods.push(on('n2', pod('b', { class: 'packed', phase: 'Running' })));
    world.pods.push(on('n3', pod('c', { class: 'metal', phase: 'Running' })));
    world.pods.push(on('n3', pod('d', { class: 'metal', phase: 'Running' })));
    auditor.sweep();
    await auditor.settled();
    expect(reported()).toEqual(['second']);
    // The other pod is named on the Node only: the pod's Event is read in its own namespace.
    const [onPod, onNode] = events;
    expect(onPod!.note).toContain('beside another pod of the class');
    expect(onNode!.regarding.kind).toBe('Node');
    expect(onNode!.note).toContain('beside team-a/first');
  });

  it('reports a pod of a class on a shared node, which is in no node cache, when its event touches it', async () => {
    const world = new World();
    const { auditor, reported } = start(world);
    world.pods.push(on('shared', pod('escaped', { class: 'metal', phase: 'Running' })));
    auditor.touch('shared');
    await auditor.settled();
    expect(reported()).toEqual(['escaped']);
  });

  it('does not take an Instance’s node whose Node object is missing for now (re-registering) for a shared node', async () => {
    const world = new World();
    world.instanceNodes = ['ipp-1'];
    const { auditor, reported } = start(world);
    world.pods.push(on('ipp-1', pod('tenant', { class: 'metal', phase: 'Running' })));
    auditor.touch('ipp-1');
    await auditor.settled();
    expect(reported()).toEqual([]);
  });

  it('sweeps every node when it starts, and ignores touches while it is not running', async () => {
    const world = new World();
    world.nodeList = [node('n1', { class: 'metal' })];
    world.pods.push(on('n1', pod('early', { class: 'other', phase: 'Running' })));
    const events: IppEvent[] = [];
    const auditor = new Auditor(
      world,
      { record: (...es: IppEvent[]) => void events.push(...es) },
      new Metrics({ defaultMetrics: false }),
      createLogger('silent'),
      { batchDelayMs: 0 },
    );
    auditor.touch('n1');
    await auditor.settled();
    expect(events).toEqual([]);
    const stop = new AbortController();
    stops.push(stop);
    void auditor.run(stop.signal);
    await auditor.settled();
    expect(events.filter((e) => e.regarding.kind === 'Pod').map((e) => e.regarding.name)).toEqual(['early']);
  });

  it('audits a node again when the DaemonSet verdict its pod waited for arrives, without another event', async () => {
    const world = new World();
    world.nodeList = [node('n1', { class: 'metal' })];
    let answer!: (ds: V1DaemonSet | undefined) => void;
    const { auditor, reported } = start(world, {
      readDaemonSet: () => new Promise((resolve) => (answer = resolve)),
    });
    await auditor.settled();
    world.pods.push(on('n1', pod('forged', { class: null, daemonSet: true, ns: 'kube-system', phase: 'Running' })));
    auditor.touch('n1');
    await new Promise((r) => setTimeout(r, 20));
    expect(reported()).toEqual([]);
    answer(undefined); // no such DaemonSet: the owner reference is forged
    await auditor.settled();
    expect(reported()).toEqual(['forged']);
  });

  it('asks again, after a delay, about a DaemonSet whose read failed', async () => {
    const world = new World();
    world.nodeList = [node('n1', { class: 'metal' })];
    let reads = 0;
    const { auditor, reported } = start(world, {
      retryDelayMs: 10,
      readDaemonSet: async () => {
        if (++reads === 1) throw new Error('503 from the apiserver');
        return undefined;
      },
    });
    world.pods.push(on('n1', pod('forged', { class: null, daemonSet: true, ns: 'kube-system', phase: 'Running' })));
    auditor.touch('n1');
    await auditor.settled();
    expect(reported()).toEqual([]);
    await new Promise((r) => setTimeout(r, 50));
    await auditor.settled();
    expect(reads).toBe(2);
    expect(reported()).toEqual(['forged']);
  });

  it('yields to the event loop while a sweep audits many nodes', async () => {
    const world = new World();
    for (let i = 0; i < 3000; i++) {
      world.nodeList.push(node(`n${i}`, { class: 'metal' }));
      world.pods.push(on(`n${i}`, pod(`p${i}`, { class: 'metal', phase: 'Running' })));
    }
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 0);
    const { auditor } = start(world);
    await auditor.settled();
    clearInterval(ticker);
    expect(world.podsOnNodeCalls.length).toBe(3000);
    // A sweep of 3,000 nodes (each filtering 3,000 pods here) is not one synchronous stretch.
    expect(ticks).toBeGreaterThan(1);
  });
});
