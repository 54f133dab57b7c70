// A list+watch cache that never lies about what it has seen. It does its own LIST (in pages) and
// WATCH (with bookmarks) instead of client-node's ListWatch, whose start() swallows a failing list:
// an informer whose first LIST failed would count as synced with an empty cache, and a controller
// acting on an empty cache deletes what it cannot see. Here:
// - `hasSynced()` turns true only once a complete LIST succeeded; until then the last error is kept
//   for /readyz, and the list is retried with capped, jittered backoff;
// - a relist replaces the cache only once every page has arrived, so a failing relist keeps the
//   previous (stale but complete) cache instead of emptying it;
// - a watch that ends is resumed from the last resourceVersion seen (bookmarks keep it fresh);
//   410 Gone relists; a watch silent for too long is replaced.
// Objects pass through `transform` as they arrive, so the cache holds only what controllers read;
// their managedFields are left out as the text is parsed (decode.ts).
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { parseLean } from './decode.ts';
import { requestWithClient, statusOf } from './request.ts';
import { spent, yieldToEventLoop } from './slice.ts';
import { IndexedStore, type Indexers } from './store.ts';

/**
 * Objects per LIST page. A page is parsed whole before its objects are made lean, and a page of 500
 * full pods (~6 MB of JSON) outlives the young generation: V8 promotes it, the old generation grows,
 * and the process keeps that memory. With 10,000 pods cached, pages of 100 left the controller at 131
 * MiB RSS against 191 MiB with pages of 500 (same live heap, 45 MiB); the extra requests cost little.
 */
export const LIST_PAGE_SIZE = 100;

export interface InformerOptions<T extends KubernetesObject> {
  kubeconfig: KubeConfig;
  /** Resource name for logs, metrics and /readyz, e.g. "pods". */
  resource: string;
  /** Collection path, e.g. /api/v1/pods or /apis/ipp.dev/v1alpha1/instances. */
  path: string;
  labelSelector?: string;
  logger: Logger;
  /**
   * Called for every add, update and delete (and for each change a relist finds). `old` is the
   * object an update replaced, whether a watch or a relist found it.
   */
  onChange: (obj: T, kind: 'add' | 'update' | 'delete', old?: T) => void;
  /** Secondary indexes of the cache, read with byIndex(). */
  indexers?: Indexers<T>;
  /** Applied to every object as it arrives (list or watch), e.g. to drop fields nobody reads. */
  transform?: (obj: T) => T;
  /** Objects per LIST page (limit/continue); 0 lists in one response. Default LIST_PAGE_SIZE. */
  pageSize?: number;
  /** Restart a watch that has shown no activity (event, bookmark, reconnect) for this long. */
  stallAfterMs?: number;
  onActivity?: (at: number) => void;
  /** Retry delays after failures: doubling from base to max, ±20 % jitter. */
  backoff?: { baseMs: number; maxMs: number };
}

export interface InformerStatus {
  resource: string;
  synced: boolean;
  objects: number;
  /** The last list/watch failure not yet followed by a success. */
  lastError?: string;
  lastErrorAt?: Date;
}

/** A failed list or watch request, with the API server's status. */
export class ApiRequestError extends Error {
  readonly statusCode: number;
  readonly reason: string | undefined;
  constructor(what: string, statusCode: number, reason: string | undefined, message: string) {
    super(`${what}: HTTP ${statusCode}${reason ? ` ${reason}` : ''}: ${message}`);
    this.name = 'ApiRequestError';
    this.statusCode = statusCode;
    this.reason = reason;
  }
}

const isGone = (e: unknown) => e instanceof ApiRequestError && e.statusCode === 410;
const describe = (e: unknown) => (e instanceof Error ? e.message : String(e));

interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T & { code?: number; reason?: string; message?: string };
}

/**
 * Drops what no reader needs from every object: managedFields can be half of a small object. Most
 * never get built (decode.ts cuts them from the text); this catches what that leaves to a whole parse.
 */
export function stripManagedFields<T extends KubernetesObject>(obj: T): T {
  if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
  return obj;
}

export class Informer<T extends KubernetesObject> {
  readonly resource: string;
  private readonly opts: InformerOptions<T>;
  private readonly store: IndexedStore<T>;
  private synced = false;
  private resourceVersion = '';
  private lastActivity = Date.now();
  /**
   * The last time the cache took something from the server (an event, a bookmark, a relist): not a
   * watch merely opened, which a stale resourceVersion's 410 follows, nor the watchdog's restart.
   */
  private lastHeard = Date.now();
  private failures = 0;
  private watchesOpened = 0;
  private lastError: { message: string; at: Date } | undefined;
  private stopped = true;
  private loop: Promise<void> | undefined;
  private lifetime = new AbortController();
  private currentWatch: AbortController | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private firstSync: { promise: Promise<void>; resolve: () => void } | undefined;

  constructor(opts: InformerOptions<T>) {
    this.opts = opts;
    this.resource = opts.resource;
    this.store = new IndexedStore<T>(opts.indexers);
  }

  /** Starts listing and watching; resolves once the first complete LIST is cached (or on stop()). */
  async start(): Promise<void> {
    if (!this.stopped) return this.firstSync?.promise;
    this.stopped = false;
    this.lifetime = new AbortController();
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.firstSync = { promise, resolve };
    const stall = this.opts.stallAfterMs ?? 10 * 60_000;
    this.watchdog = setInterval(
      () => {
        if (!this.currentWatch || Date.now() - this.lastActivity <= stall) return;
        this.opts.logger.warn(
          { resource: this.resource, silentForMs: Date.now() - this.lastActivity },
          'watch shows no activity; restarting it',
        );
        this.lastActivity = Date.now();
        this.currentWatch.abort();
      },
      Math.min(stall, 30_000),
    );
    this.watchdog.unref();
    this.loop = this.run();
    return promise;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.watchdog);
    this.lifetime.abort();
    this.currentWatch?.abort();
    this.firstSync?.resolve();
    await this.loop;
  }

  /** True once a complete LIST has been cached; stays true through later failures (the cache is kept). */
  hasSynced(): boolean {
    return this.synced;
  }

  status(): InformerStatus {
    return {
      resource: this.resource,
      synced: this.synced,
      objects: this.store.size,
      ...(this.lastError ? { lastError: this.lastError.message, lastErrorAt: this.lastError.at } : {}),
    };
  }

  /**
   * Watch requests the API server has accepted since start. One per few minutes is the server-side
   * timeout; more means watches end early, e.g. kube-apiserver closing a watcher that does not keep up.
   */
  watches(): number {
    return this.watchesOpened;
  }

  /**
   * Milliseconds since the cache last took something from the server (an event, a bookmark, a
   * relist's end): a write the cache cannot show yet is still on its way while this has not moved.
   */
  silentForMs(): number {
    return Date.now() - this.lastHeard;
  }

  /** Milliseconds since the last sign of life of the watch: an event, a bookmark, or a watch accepted. */
  quietForMs(): number {
    return Date.now() - this.lastActivity;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.store.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.store.list(namespace);
  }

  byIndex(index: string, value: string): T[] {
    return this.store.byIndex(index, value);
  }

  /** How many cached objects index `index` yields `value` for. */
  countByIndex(index: string, value: string): number {
    return this.store.count(index, value);
  }

  /** The values of index `index` in use (e.g. every node name some pod is bound to). */
  indexValues(index: string): string[] {
    return this.store.indexValues(index);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) await this.relist();
        await this.watch();
      } catch (err) {
        if (this.stopped) break;
        if (isGone(err)) {
          // Our resourceVersion is older than etcd's compaction: only a fresh list is consistent.
          this.opts.logger.info({ resource: this.resource }, 'watch expired (410 Gone); relisting');
          this.resourceVersion = '';
          continue;
        }
        this.failed(err);
        await this.pause();
      }
    }
  }

  private failed(err: unknown): void {
    this.failures++;
    this.lastError = { message: describe(err), at: new Date() };
    this.opts.logger.warn(
      { resource: this.resource, err, synced: this.synced, failures: this.failures },
      this.synced ? 'watch failed; the cache is kept and the watch retried' : 'list failed; not synced, retrying',
    );
  }

  private pause(): Promise<void> {
    const { baseMs, maxMs } = this.opts.backoff ?? { baseMs: 1_000, maxMs: 30_000 };
    const delay = Math.min(baseMs * 2 ** Math.max(0, this.failures - 1), maxMs) * (0.8 + Math.random() * 0.4);
    return new Promise((resolve) => {
      const t = setTimeout(resolve, delay);
      this.lifetime.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
  }

  private url(query: Record<string, string | number | boolean | undefined>): URL {
    const server = this.opts.kubeconfig.getCurrentCluster()?.server;
    if (!server) throw new Error(`cannot list ${this.resource}: the kubeconfig has no current cluster`);
    const url = new URL(server.replace(/\/$/, '') + this.opts.path);
    if (this.opts.labelSelector) url.searchParams.set('labelSelector', this.opts.labelSelector);
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    return url;
  }

  /**
   * undici's request(), not fetch(): its body is a Node stream, where fetch's is a web stream that
   * every watch event crossed through Readable.fromWeb and readline (~3 s of the ~33 s of CPU the
   * controller spent on a 1,000-pod burst).
   */
  private async request(what: string, url: URL, signal: AbortSignal) {
    const res = await requestWithClient(this.opts.kubeconfig, 'GET', url.toString(), { signal });
    if (res.statusCode < 300) return res.body;
    const status = statusOf(await res.body.text().catch(() => ''));
    throw new ApiRequestError(what, res.statusCode, status.reason, status.message ?? `HTTP ${res.statusCode}`);
  }

  private prepare(obj: T): T {
    stripManagedFields(obj);
    return this.opts.transform ? this.opts.transform(obj) : obj;
  }

  /** Lists every page, then swaps the cache in one step. */
  private async relist(): Promise<void> {
    const pageSize = this.opts.pageSize ?? LIST_PAGE_SIZE;
    let items: T[];
    let rv: string;
    // A list is one snapshot, taken as its first page is served: what the cache heard is as old as that.
    let from = Date.now();
    try {
      ({ items, rv } = await this.listPages(pageSize));
    } catch (err) {
      // A continue token older than compaction cannot be resumed. client-go then lists everything in
      // one response: the memory peak paging exists to avoid (a 25k-pod LIST peaked at ~780 MB of
      // heap). The paged list starts over instead; only a second expiry falls back to one response.
      if (!isGone(err) || pageSize === 0) throw err;
      this.opts.logger.info({ resource: this.resource }, 'list continuation expired (410 Gone); listing again');
      try {
        from = Date.now();
        ({ items, rv } = await this.listPages(pageSize));
      } catch (again) {
        if (!isGone(again)) throw again;
        from = Date.now();
        ({ items, rv } = await this.listPages(0));
      }
    }
    const changes = this.store.replace(items);
    this.resourceVersion = rv;
    this.failures = 0;
    this.lastError = undefined;
    this.lastHeard = from;
    this.touch();
    const first = !this.synced;
    if (first) {
      this.synced = true;
      this.opts.logger.info({ resource: this.resource, objects: this.store.size }, 'cache synced');
    }
    // Tens of thousands of changes (the first list of a large cluster's pods) each wake controllers:
    // told in slices, so the lease, webhook and other watches run in between. The cache is already
    // whole; this watch resumes once all are told.
    // Deletes first, as a watch tells a name deleted and made again, and all of them before the
    // first yield: the cache is swapped already, and a controller running in a yield would find a
    // force-deleted pod's node empty before its departure is recorded, and hand it on
    // (state/departures.ts).
    for (const o of changes.deleted) this.opts.onChange(o, 'delete');
    const told: [T, 'add' | 'update', T?][] = [
      ...changes.added.map((o) => [o, 'add'] as [T, 'add']),
      ...changes.updated.map(({ obj, old }) => [obj, 'update', old] as [T, 'update', T]),
    ];
    for (const [o, kind, old] of told) {
      this.opts.onChange(o, kind, old);
      if (spent()) await yieldToEventLoop();
    }
    // start() resolves once the first list's objects have all been told, as when they were told at once.
    if (first) this.firstSync?.resolve();
  }

  private async listPages(limit: number): Promise<{ items: T[]; rv: string }> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv: string | undefined;
    do {
      const body = await this.request(
        `listing ${this.resource}`,
        this.url({ limit, continue: cont }),
        this.lifetime.signal,
      );
      const page = parseLean<{ items?: T[]; metadata?: { continue?: string; resourceVersion?: string } }>(
        await body.text(),
      );
      for (const o of page.items ?? []) items.push(this.prepare(o));
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion ?? '';
    } while (cont && limit > 0);
    return { items, rv: rv ?? '' };
  }

  /** One watch request, until the server ends it (normal), it goes silent, or it fails (thrown). */
  private async watch(): Promise<void> {
    const ac = new AbortController();
    this.currentWatch = ac;
    const onStop = () => ac.abort();
    this.lifetime.signal.addEventListener('abort', onStop, { once: true });
    // Server-side timeout with jitter, as client-go does, so watches end and resume spread out.
    const timeoutSeconds = 240 + Math.floor(Math.random() * 120);
    // Ends a watch silent past its own timeout. One timer per silent stretch, not one per chunk: a timer
    // cleared and set again for every chunk was ~1 % of the controller's CPU in a burst.
    const idleMs = (timeoutSeconds + 60) * 1000;
    let lastData = performance.now();
    let idle: NodeJS.Timeout | undefined;
    const checkIdle = () => {
      const left = lastData + idleMs - performance.now();
      if (left <= 0) ac.abort();
      else idle = setTimeout(checkIdle, left);
    };
    const stillAlive = () => {
      lastData = performance.now();
    };
    const started = Date.now();
    let events = 0;
    try {
      const url = this.url({
        watch: true,
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds,
      });
      const body = await this.request(`watching ${this.resource}`, url, ac.signal);
      this.watchesOpened++;
      this.lastError = undefined;
      this.touch();
      stillAlive();
      idle = setTimeout(checkIdle, idleMs);
      // One JSON event per line; a chunk may hold many lines or part of one (utf8 decoding keeps a
      // character split between chunks whole).
      body.setEncoding('utf8');
      const lines = new Lines();
      const each = (line: string) => {
        this.handle(parseLean<WatchEvent<T>>(line));
        events++;
      };
      for await (const chunk of body as AsyncIterable<string>) {
        stillAlive();
        lines.push(chunk, each);
      }
    } catch (err) {
      if (ac.signal.aborted && !isGone(err)) return; // stopped, silent or stalled: the loop decides
      throw err;
    } finally {
      clearTimeout(idle);
      this.lifetime.signal.removeEventListener('abort', onStop);
      if (this.currentWatch === ac) this.currentWatch = undefined;
    }
    // A watch the server ends at once, again and again, must not become a hot loop.
    if (events === 0 && Date.now() - started < 1_000) {
      this.failures++;
      await this.pause();
    } else this.failures = 0;
  }

  private handle(ev: WatchEvent<T>): void {
    switch (ev.type) {
      case 'ERROR': {
        const s = ev.object;
        throw new ApiRequestError(`watching ${this.resource}`, s.code ?? 500, s.reason, s.message ?? 'watch error');
      }
      case 'BOOKMARK':
        break;
      case 'ADDED':
      case 'MODIFIED': {
        const obj = this.prepare(ev.object);
        const old = this.store.upsert(obj);
        this.opts.onChange(obj, old ? 'update' : 'add', old);
        break;
      }
      case 'DELETED': {
        const old = this.store.delete(ev.object);
        if (old) this.opts.onChange(this.prepare(ev.object), 'delete');
        break;
      }
    }
    this.resourceVersion = ev.object.metadata?.resourceVersion || this.resourceVersion;
    this.lastHeard = Date.now();
    this.touch();
  }

  private touch(): void {
    this.lastActivity = Date.now();
    this.opts.onActivity?.(this.lastActivity);
  }
}

/**
 * The lines of a text that arrives in chunks (a watch's events, one JSON object per line): each
 * complete line that is not blank is given to `each` as its chunk brings it. Lines are cut from each
 * chunk as it came: searching the text joined to what was left of the chunk before would copy the
 * stream once more (V8 flattens a joined string to search it).
 */
export class Lines {
  private pending = '';

  push(chunk: string, each: (line: string) => void): void {
    let nl = chunk.indexOf('\n');
    if (nl < 0) {
      this.pending += chunk;
      return;
    }
    let line = this.pending + chunk.slice(0, nl);
    let start = nl + 1;
    for (;;) {
      if (line.trim()) each(line);
      nl = chunk.indexOf('\n', start);
      if (nl < 0) break;
      line = chunk.slice(start, nl);
      start = nl + 1;
    }
    this.pending = chunk.slice(start);
  }
}
