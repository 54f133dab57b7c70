// Kubernetes Events (events.k8s.io/v1) about pods, Instances and Nodes: what a user sees in
// `kubectl describe` / `kubectl events`. Recording never blocks or fails a reconcile: publish() queues
// the write and returns; failures are logged. A reconcile loop that retries the same failure must not
// flood the apiserver, so, like client-go's events broadcaster, repeats of the same (object, type,
// reason, action, note) within a window become one Event whose `series` counts them, written at most
// once per seriesUpdateIntervalMs; and each object gets a token bucket for new Events (burst 25,
// one more every 5 minutes, the numbers of client-go's legacy recorder spam filter).
import { V1MicroTime, type EventsV1Event, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { describeError, isAlreadyExists, isNotFound } from './errors.ts';
import { send } from './request.ts';

import type { EventObjectRef, EventPublisher, EventType, IppEvent } from './event.ts';

export {
  instanceRef,
  podRef,
  type EventObjectRef,
  type EventPublisher,
  type EventType,
  type IppEvent,
} from './event.ts';

/** Where Events are written; the default talks to the apiserver, unit tests pass their own. */
export interface EventSink {
  create(namespace: string, event: EventsV1Event): Promise<void>;
  /** Throws a 404 (kube ApiException) when the Event is gone (Events expire after the apiserver's --event-ttl, 1 h). */
  updateSeries(namespace: string, name: string, series: { count: number; lastObservedTime: Date }): Promise<void>;
}

export interface EventRecorderOptions {
  kubeconfig: KubeConfig;
  /** Qualified name, e.g. 'ipp.dev/controller' (required by apiserver validation). */
  reportingController: string;
  /** This replica, e.g. the pod name; at most 128 characters (longer is cut). */
  reportingInstance: string;
  logger: Logger;
  now?: () => Date;
  /** Repeats closer than this to the previous occurrence join its series. Default 6 min (client-go). */
  dedupeWindowMs?: number;
  /** Minimum time between two writes of one series. Default 30 s. */
  seriesUpdateIntervalMs?: number;
  /** New Events per object: bucket size. Default 25. */
  burst?: number;
  /** New Events per object: one token back every refillMs. Default 300 000 (5 min). */
  refillMs?: number;
  /** Distinct series kept in memory; the oldest are forgotten beyond this. Default 4096. */
  maxSeries?: number;
  /**
   * Writes in flight at once. Default 16: when a burst gave ~4 Events per pod (one per pod today,
   * Provisioning), 4 in flight on a loaded API server (~300 ms a write) dropped over a thousand of a
   * 1,000-pod burst's from a full queue; failures come in bursts too. They stay in the ordinary lane
   * of the rate limit, behind every write that places a pod.
   */
  concurrency?: number;
  /** Writes waiting; further new Events are dropped (and logged) while the queue is this full. Default 1000. */
  maxQueued?: number;
  sink?: EventSink;
}

interface Series {
  key: string;
  namespace: string;
  /** Name of the Event object once created. */
  name?: string;
  regarding: EventObjectRef;
  type: EventType;
  reason: string;
  action: string;
  note: string;
  firstTime: Date;
  lastObserved: Date;
  count: number;
  /** count as last written to the apiserver (0: not yet created). */
  written: number;
  lastWriteAt: number;
  queued: boolean;
  /** A write of this series is in flight; a second one must wait, or it could create a duplicate. */
  writing: boolean;
  /** Asked to write again while writing. */
  again: boolean;
  timer?: NodeJS.Timeout;
}

interface Bucket {
  tokens: number;
  at: number;
}

const NOTE_MAX_BYTES = 1024;
const FIELD_MAX = 128;

function truncateBytes(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  let out = s.slice(0, max);
  while (Buffer.byteLength(out) > max - 3) out = out.slice(0, -1);
  return `${out}...`;
}

/**
 * Events as plain JSON requests (request.ts): every pod of a burst gets two. V1MicroTime's toISOString
 * writes the six fractional digits the API server requires, and JSON.stringify calls it.
 */
export function kubeEventSink(kubeconfig: KubeConfig): EventSink {
  const events = (namespace: string) => `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/events`;
  return {
    async create(namespace, body) {
      await send(kubeconfig, { method: 'POST', path: events(namespace), body });
    },
    async updateSeries(namespace, name, series) {
      const body = {
        series: { count: series.count, lastObservedTime: new V1MicroTime(series.lastObservedTime.getTime()) },
      };
      await send(kubeconfig, {
        method: 'PATCH',
        path: `${events(namespace)}/${encodeURIComponent(name)}`,
        body,
        patch: 'merge',
      });
    },
  };
}

export class EventRecorder implements EventPublisher {
  private readonly sink: EventSink;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly controller: string;
  private readonly instance: string;
  private readonly window: number;
  private readonly interval: number;
  private readonly burst: number;
  private readonly refillMs: number;
  private readonly maxSeries: number;
  private readonly concurrency: number;
  private readonly maxQueued: number;

  private readonly series = new Map<string, Series>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly queue: Series[] = [];
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  private lastPrune = 0;
  private nameSeq = 0;
  /** Occurrences not written because of the per-object limit or a full queue (tests and debug logs). */
  dropped = 0;

  constructor(opts: EventRecorderOptions) {
    this.sink = opts.sink ?? kubeEventSink(opts.kubeconfig);
    this.log = opts.logger.child({ component: 'events' });
    this.now = opts.now ?? (() => new Date());
    this.controller = opts.reportingController;
    this.instance = opts.reportingInstance.slice(0, FIELD_MAX);
    this.window = opts.dedupeWindowMs ?? 6 * 60_000;
    this.interval = opts.seriesUpdateIntervalMs ?? 30_000;
    this.burst = opts.burst ?? 25;
    this.refillMs = opts.refillMs ?? 5 * 60_000;
    this.maxSeries = opts.maxSeries ?? 4096;
    this.concurrency = opts.concurrency ?? 16;
    this.maxQueued = opts.maxQueued ?? 1000;
  }

  /** Records each Event; see publish(). */
  record(...events: IppEvent[]): void {
    for (const e of events) this.publish(e.regarding, e.type, e.reason, e.action, e.note);
  }

  /**
   * Records that something happened to `regarding`. Returns at once; the write happens in the
   * background. Keep `note` free of timestamps and counters: identical notes are what gets deduplicated.
   */
  publish(regarding: EventObjectRef, type: EventType, reason: string, action: string, note: string): void {
    const now = this.now();
    const t = now.getTime();
    this.prune(t);
    const objectKey =
      regarding.uid || `${regarding.apiVersion}/${regarding.kind}/${regarding.namespace ?? ''}/${regarding.name}`;
    reason = reason.slice(0, FIELD_MAX);
    action = action.slice(0, FIELD_MAX);
    note = truncateBytes(note, NOTE_MAX_BYTES);
    const key = JSON.stringify([objectKey, type, reason, action, note]);

    const existing = this.series.get(key);
    if (existing && t - existing.lastObserved.getTime() <= this.window) {
      existing.count++;
      existing.lastObserved = now;
      this.schedule(existing);
      return;
    }
    if (existing) this.forget(existing);

    if (!this.take(objectKey, t)) {
      this.dropped++;
      this.log.debug(
        { regarding: `${regarding.kind}/${regarding.name}`, reason },
        'event dropped: too many events for this object',
      );
      return;
    }
    if (this.queue.length >= this.maxQueued) {
      this.dropped++;
      this.log.warn(
        { regarding: `${regarding.kind}/${regarding.name}`, reason, queued: this.queue.length },
        'event dropped: write queue full',
      );
      return;
    }
    const s: Series = {
      key,
      namespace: regarding.namespace || 'default',
      regarding: { ...regarding },
      type,
      reason,
      action,
      note,
      firstTime: now,
      lastObserved: now,
      count: 1,
      written: 0,
      lastWriteAt: 0,
      queued: false,
      writing: false,
      again: false,
    };
    this.series.set(key, s);
    this.enqueue(s);
  }

  /** Writes every pending count now and waits for all writes; for shutdown and tests. */
  async flush(): Promise<void> {
    for (const s of this.series.values()) {
      if (s.count > s.written) {
        if (s.timer) clearTimeout(s.timer);
        s.timer = undefined;
        this.enqueue(s);
      }
    }
    while (this.active > 0 || this.queue.length > 0) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  private schedule(s: Series): void {
    // A queued or in-flight write is followed up when it ends (pump), and picks up the latest count.
    if (s.queued || s.writing || s.timer) return;
    const delay = Math.max(0, s.lastWriteAt + this.interval - Date.now());
    s.timer = setTimeout(() => {
      s.timer = undefined;
      this.enqueue(s);
    }, delay);
    s.timer.unref();
  }

  private enqueue(s: Series): void {
    if (s.queued) return;
    if (s.writing) {
      s.again = true;
      return;
    }
    s.queued = true;
    this.queue.push(s);
    this.pump();
  }

  private pump(): void {
    while (this.active < this.concurrency && this.queue.length > 0) {
      const s = this.queue.shift()!;
      s.queued = false;
      s.writing = true;
      this.active++;
      void this.write(s).finally(() => {
        this.active--;
        s.writing = false;
        const tracked = this.series.get(s.key) === s;
        if (s.again && tracked && s.count > s.written) this.enqueue(s);
        // Occurrences that arrived while this write was in flight go out on the series schedule.
        else if (tracked && s.count > s.written) this.schedule(s);
        s.again = false;
        this.pump();
        if (this.active === 0 && this.queue.length === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of waiters) w();
        }
      });
    }
  }

  private async write(s: Series): Promise<void> {
    const count = s.count;
    const lastObserved = s.lastObserved;
    s.lastWriteAt = Date.now();
    try {
      if (s.name !== undefined) {
        try {
          await this.sink.updateSeries(s.namespace, s.name, { count, lastObservedTime: lastObserved });
          s.written = count;
          return;
        } catch (e) {
          // The Event expired (apiserver --event-ttl) while the series went on: start a new one.
          if (!isNotFound(e)) throw e;
          s.name = undefined;
        }
      }
      for (let attempt = 0; ; attempt++) {
        const name = this.eventName(s.regarding.name);
        try {
          await this.sink.create(s.namespace, this.body(s, name, count, lastObserved));
          s.name = name;
          s.written = count;
          return;
        } catch (e) {
          if (!isAlreadyExists(e) || attempt > 0) throw e;
        }
      }
    } catch (e) {
      // Best effort: stop retrying this occurrence; a later one is counted on top.
      s.written = Math.max(s.written, s.name === undefined ? 0 : count);
      if (s.name === undefined) this.forget(s);
      this.log.warn(
        {
          regarding: `${s.regarding.kind}/${s.regarding.namespace ? `${s.regarding.namespace}/` : ''}${s.regarding.name}`,
          reason: s.reason,
          err: describeError(e),
        },
        'could not record event',
      );
    }
  }

  private body(s: Series, name: string, count: number, lastObserved: Date): EventsV1Event {
    const r = s.regarding;
    return {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name, namespace: s.namespace },
      // MicroTime: the apiserver rejects the millisecond form Date.toJSON() would produce.
      eventTime: new V1MicroTime(s.firstTime.getTime()),
      series: count > 1 ? { count, lastObservedTime: new V1MicroTime(lastObserved.getTime()) } : undefined,
      reportingController: this.controller,
      reportingInstance: this.instance,
      type: s.type,
      reason: s.reason,
      action: s.action,
      note: s.note,
      regarding: { apiVersion: r.apiVersion, kind: r.kind, name: r.name, namespace: r.namespace, uid: r.uid },
    };
  }

  /** `<object>.<hex>` like client-go's `%v.%x` of UnixNano, so Events sort and group by object. */
  private eventName(objectName: string): string {
    const suffix = (BigInt(Date.now()) * 1_000_000n + BigInt(this.nameSeq++ % 1_000_000)).toString(16);
    return `${objectName.slice(0, 253 - suffix.length - 1)}.${suffix}`;
  }

  private take(objectKey: string, t: number): boolean {
    let b = this.buckets.get(objectKey);
    if (!b) {
      b = { tokens: this.burst, at: t };
      this.buckets.set(objectKey, b);
    }
    const refill = Math.floor((t - b.at) / this.refillMs);
    if (refill > 0) {
      b.tokens = Math.min(this.burst, b.tokens + refill);
      b.at = b.tokens === this.burst ? t : b.at + refill * this.refillMs;
    }
    if (b.tokens < 1) return false;
    b.tokens--;
    return true;
  }

  private forget(s: Series): void {
    if (s.timer) clearTimeout(s.timer);
    s.timer = undefined;
    if (this.series.get(s.key) === s) this.series.delete(s.key);
  }

  private prune(t: number): void {
    if (t - this.lastPrune < 60_000 && this.series.size < this.maxSeries) return;
    this.lastPrune = t;
    for (const s of this.series.values()) {
      if (t - s.lastObserved.getTime() > this.window && !s.queued && !s.timer && s.count === s.written) this.forget(s);
    }
    // Still too many live series: forget the oldest (Map order is insertion order). A repeat of one
    // of them then starts a new Event, which is the price of bounded memory.
    for (const s of this.series.values()) {
      if (this.series.size < this.maxSeries) break;
      if (!s.queued) this.forget(s);
    }
    for (const [k, b] of this.buckets) {
      if (b.tokens + Math.floor((t - b.at) / this.refillMs) >= this.burst) this.buckets.delete(k);
    }
  }
}
