// EventRecorder against a recording sink: the Event bodies it writes, deduplication into series,
// per-object rate limiting, and that failures never reach the caller.
import { Writable } from 'node:stream';
import { ApiException, KubeConfig, type EventsV1Event } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  EventRecorder,
  type EventObjectRef,
  type EventRecorderOptions,
  type EventSink,
} from '../../../src/kube/events.ts';

interface Call {
  op: 'create' | 'series';
  namespace: string;
  name: string;
  event?: EventsV1Event;
  count?: number;
  lastObservedTime?: Date;
}

class FakeSink implements EventSink {
  calls: Call[] = [];
  failCreate: unknown[] = [];
  failSeries: unknown[] = [];
  /** When set, create() waits for it: lets a test publish while a create is in flight. */
  gate: Promise<void> | undefined;

  async create(namespace: string, event: EventsV1Event): Promise<void> {
    if (this.gate) await this.gate;
    const err = this.failCreate.shift();
    if (err) throw err;
    // What the client would put on the wire.
    this.calls.push({
      op: 'create',
      namespace,
      name: event.metadata!.name!,
      event: JSON.parse(JSON.stringify(event)) as EventsV1Event,
    });
  }

  async updateSeries(
    namespace: string,
    name: string,
    series: { count: number; lastObservedTime: Date },
  ): Promise<void> {
    const err = this.failSeries.shift();
    if (err) throw err;
    this.calls.push({ op: 'series', namespace, name, count: series.count, lastObservedTime: series.lastObservedTime });
  }

  creates() {
    return this.calls.filter((c) => c.op === 'create');
  }
  series() {
    return this.calls.filter((c) => c.op === 'series');
  }
}

const apiError = (code: number, reason: string) =>
  new ApiException(code, reason, JSON.stringify({ kind: 'Status', reason, message: `${reason} for test`, code }), {});

const pod: EventObjectRef = { apiVersion: 'v1', kind: 'Pod', name: 'web-0', namespace: 'shop', uid: 'uid-pod-1' };
const instance: EventObjectRef = {
  apiVersion: 'ipp.dev/v1alpha1',
  kind: 'Instance',
  name: 'inst-abc',
  uid: 'uid-inst-1',
};

describe('EventRecorder', () => {
  let sink: FakeSink;
  let clock: number;
  let logs: Record<string, unknown>[];

  const recorder = (opts: Partial<EventRecorderOptions> = {}) => {
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        cb();
      },
    });
    return new EventRecorder({
      kubeconfig: new KubeConfig(),
      reportingController: 'ipp.dev/controller',
      reportingInstance: 'ipp-controller-7d9f-abcde',
      logger: pino({ level: 'debug' }, stream),
      now: () => new Date(clock),
      sink,
      ...opts,
    });
  };

  beforeEach(() => {
    sink = new FakeSink();
    clock = Date.parse('2026-11-22T10:00:00.123Z');
    logs = [];
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("writes an events.k8s.io/v1 Event in the regarding object's namespace, with MicroTime eventTime", async () => {
    const r = recorder();
    r.publish(pod, 'Normal', 'Pinned', 'Pin', 'pinned to node ipp-node-1');
    await r.flush();
    expect(sink.calls).toHaveLength(1);
    const c = sink.calls[0]!;
    expect(c.namespace).toBe('shop');
    expect(c.name).toMatch(/^web-0\.[0-9a-f]+$/);
    expect(c.event).toMatchObject({
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: c.name, namespace: 'shop' },
      eventTime: '2026-11-22T10:00:00.123000Z',
      reportingController: 'ipp.dev/controller',
      reportingInstance: 'ipp-controller-7d9f-abcde',
      type: 'Normal',
      reason: 'Pinned',
      action: 'Pin',
      note: 'pinned to node ipp-node-1',
      regarding: { apiVersion: 'v1', kind: 'Pod', name: 'web-0', namespace: 'shop', uid: 'uid-pod-1' },
    });
    expect(c.event!.series).toBeUndefined();
  });

  it('puts Events about cluster-scoped objects (Instance, Node) into default', async () => {
    const r = recorder();
    r.publish(instance, 'Warning', 'LaunchFailed', 'Launch', 'no capacity');
    r.publish(
      { apiVersion: 'v1', kind: 'Node', name: 'ip-10-0-0-1.ec2.internal' },
      'Normal',
      'Idle',
      'Teardown',
      'idle',
    );
    await r.flush();
    expect(sink.creates().map((c) => c.namespace)).toEqual(['default', 'default']);
    expect(sink.creates()[0]!.event!.regarding!.namespace).toBeUndefined();
  });

  it('folds repeats within the window into one Event whose series counts them', async () => {
    const r = recorder();
    for (let i = 0; i < 5; i++) {
      r.publish(pod, 'Warning', 'InsufficientCapacity', 'Launch', 'no capacity for i3.metal in us-east-1a');
      clock += 10_000;
    }
    await r.flush();
    expect(sink.creates()).toHaveLength(1);
    const name = sink.creates()[0]!.name;
    const series = sink.series();
    expect(series.length).toBeGreaterThanOrEqual(1);
    expect(series.at(-1)).toMatchObject({ namespace: 'shop', name, count: 5 });
    expect(series.at(-1)!.lastObservedTime!.getTime()).toBe(clock - 10_000);
    // Nothing pending: a second flush writes nothing.
    const before = sink.calls.length;
    await r.flush();
    expect(sink.calls).toHaveLength(before);
  });

  it('starts a new Event when the note, the reason or the object differs', async () => {
    const r = recorder();
    r.publish(pod, 'Warning', 'InsufficientCapacity', 'Launch', 'no capacity for i3.metal');
    r.publish(pod, 'Warning', 'InsufficientCapacity', 'Launch', 'no capacity for m5.metal');
    r.publish(pod, 'Warning', 'RegistrationTimeout', 'Launch', 'no capacity for m5.metal');
    r.publish(
      { ...pod, name: 'web-1', uid: 'uid-pod-2' },
      'Warning',
      'RegistrationTimeout',
      'Launch',
      'no capacity for m5.metal',
    );
    await r.flush();
    expect(sink.creates()).toHaveLength(4);
    expect(sink.series()).toHaveLength(0);
  });

  it('starts a new Event when the same one recurs after the dedupe window', async () => {
    const r = recorder({ dedupeWindowMs: 60_000 });
    r.publish(pod, 'Normal', 'Idle', 'Teardown', 'idle');
    await r.flush();
    clock += 61_000;
    r.publish(pod, 'Normal', 'Idle', 'Teardown', 'idle');
    await r.flush();
    expect(sink.creates()).toHaveLength(2);
    expect(sink.creates()[0]!.name).not.toBe(sink.creates()[1]!.name);
  });

  it('writes a busy series at most once per interval', async () => {
    vi.useFakeTimers();
    const r = recorder({ seriesUpdateIntervalMs: 30_000 });
    r.publish(pod, 'Warning', 'LaunchFailed', 'Launch', 'throttled');
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.creates()).toHaveLength(1);
    for (let i = 0; i < 50; i++) r.publish(pod, 'Warning', 'LaunchFailed', 'Launch', 'throttled');
    await vi.advanceTimersByTimeAsync(29_000);
    expect(sink.series()).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1_100);
    expect(sink.series()).toEqual([expect.objectContaining({ count: 51 })]);
    for (let i = 0; i < 50; i++) r.publish(pod, 'Warning', 'LaunchFailed', 'Launch', 'throttled');
    await vi.advanceTimersByTimeAsync(29_000);
    expect(sink.series()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1_100);
    expect(sink.series().map((c) => c.count)).toEqual([51, 101]);
    expect(sink.creates()).toHaveLength(1);
  });

  it('never creates the same Event twice while its create is in flight', async () => {
    const r = recorder();
    let open!: () => void;
    sink.gate = new Promise((resolve) => (open = resolve));
    r.publish(pod, 'Normal', 'Launched', 'Launch', 'launched i-0abc');
    r.publish(pod, 'Normal', 'Launched', 'Launch', 'launched i-0abc');
    const flushed = r.flush();
    r.publish(pod, 'Normal', 'Launched', 'Launch', 'launched i-0abc');
    open();
    await flushed;
    await r.flush();
    expect(sink.creates()).toHaveLength(1);
    expect(sink.series().at(-1)!.count).toBe(3);
  });

  it('limits new Events per object (burst, then one per refill period) without affecting other objects', async () => {
    const r = recorder({ burst: 5, refillMs: 60_000 });
    for (let i = 0; i < 8; i++) r.publish(pod, 'Warning', `Reason${i}`, 'Launch', `attempt failed`);
    r.publish(instance, 'Normal', 'Launched', 'Launch', 'ok');
    await r.flush();
    expect(sink.creates().filter((c) => c.event!.regarding!.name === 'web-0')).toHaveLength(5);
    expect(sink.creates().filter((c) => c.event!.regarding!.name === 'inst-abc')).toHaveLength(1);
    expect(r.dropped).toBe(3);

    clock += 60_000;
    r.publish(pod, 'Warning', 'Reason8', 'Launch', 'attempt failed');
    r.publish(pod, 'Warning', 'Reason9', 'Launch', 'attempt failed');
    await r.flush();
    expect(sink.creates().filter((c) => c.event!.regarding!.name === 'web-0')).toHaveLength(6);
    expect(r.dropped).toBe(4);

    // Repeats of an already recorded Event are counted, not limited.
    r.publish(pod, 'Warning', 'Reason0', 'Launch', 'attempt failed');
    await r.flush();
    expect(sink.series().at(-1)).toMatchObject({ count: 2 });
  });

  it('logs write failures and never throws; a failed create is retried by the next occurrence', async () => {
    const r = recorder();
    sink.failCreate.push(apiError(403, 'Forbidden'));
    expect(() => r.publish(pod, 'Normal', 'Launched', 'Launch', 'ok')).not.toThrow();
    await r.flush();
    expect(sink.creates()).toHaveLength(0);
    expect(logs.some((l) => l.msg === 'could not record event' && String(l.err).includes('403'))).toBe(true);
    r.publish(pod, 'Normal', 'Launched', 'Launch', 'ok');
    await r.flush();
    expect(sink.creates()).toHaveLength(1);
  });

  it('retries a create whose generated name is taken', async () => {
    const r = recorder();
    sink.failCreate.push(apiError(409, 'AlreadyExists'));
    r.publish(pod, 'Normal', 'Launched', 'Launch', 'ok');
    await r.flush();
    expect(sink.creates()).toHaveLength(1);
  });

  it("starts a new Event carrying the count when the series' Event has expired", async () => {
    const r = recorder();
    r.publish(pod, 'Warning', 'RegistrationTimeout', 'Register', 'node did not join');
    await r.flush();
    sink.failSeries.push(apiError(404, 'NotFound'));
    r.publish(pod, 'Warning', 'RegistrationTimeout', 'Register', 'node did not join');
    await r.flush();
    const creates = sink.creates();
    expect(creates).toHaveLength(2);
    expect(creates[1]!.name).not.toBe(creates[0]!.name);
    expect(creates[1]!.event!.series).toEqual({ count: 2, lastObservedTime: '2026-11-22T10:00:00.123000Z' });
  });

  it('cuts notes to 1 kB and reportingInstance to 128 characters, as the apiserver requires', async () => {
    const r = recorder({ reportingInstance: 'x'.repeat(200) });
    r.publish(pod, 'Warning', 'Failed', 'Launch', 'é'.repeat(2000));
    await r.flush();
    const e = sink.creates()[0]!.event!;
    expect(Buffer.byteLength(e.note!)).toBeLessThanOrEqual(1024);
    expect(e.note!.endsWith('...')).toBe(true);
    expect(e.reportingInstance).toHaveLength(128);
  });

  it('keeps memory bounded: at most maxSeries series are remembered', async () => {
    const r = recorder({ maxSeries: 10, burst: 1000 });
    for (let i = 0; i < 100; i++) {
      r.publish({ ...pod, name: `p-${i}`, uid: `u-${i}` }, 'Normal', 'Pinned', 'Pin', 'ok');
      if (i % 5 === 4) await r.flush();
    }
    expect(sink.creates()).toHaveLength(100);
    expect((r as unknown as { series: Map<string, unknown> }).series.size).toBeLessThanOrEqual(10);
  });
});
