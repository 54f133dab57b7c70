// A list+watch cache that heals itself. client-node's ListWatch (2.x) backs off between clean
// reconnects and relists on 410 Gone, but any other error (HTTP 500, a failed list, a reset
// connection) stops it for good. This wrapper restarts it with capped, jittered backoff; asks the
// server to end each watch after a few minutes (timeoutSeconds) so a silently dead connection is
// replaced; and runs a watchdog that restarts a watch that has shown no sign of life for too long.
import {
  KubeConfig,
  ListWatch,
  Watch,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { Logger } from '../log.ts';

/** Adds what client-go sends on every watch: a server-side timeout with jitter and bookmarks. */
class ResilientWatch extends Watch {
  override watch(
    path: string,
    queryParams: Record<string, unknown>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return super.watch(
      path,
      { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: 240 + Math.floor(Math.random() * 120) },
      callback,
      done,
    );
  }
}

export interface InformerOptions<T extends KubernetesObject> {
  kubeconfig: KubeConfig;
  /** Resource name for logs and metrics, e.g. "pods". */
  resource: string;
  /** Collection path, e.g. /api/v1/pods or /apis/ipp.dev/v1alpha1/instances. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  logger: Logger;
  /** Called for every add, update and delete (and for each object after a relist). */
  onChange: (obj: T, kind: 'add' | 'update' | 'delete') => void;
  /** Restart a watch that has shown no activity (event, bookmark, reconnect) for this long. */
  stallAfterMs?: number;
  onActivity?: (at: number) => void;
}

export class Informer<T extends KubernetesObject> {
  readonly resource: string;
  private readonly lw: ListWatch<T>;
  private readonly opts: InformerOptions<T>;
  private synced = false;
  private lastActivity = Date.now();
  private failures = 0;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(opts: InformerOptions<T>) {
    this.opts = opts;
    this.resource = opts.resource;
    this.lw = new ListWatch<T>(opts.path, new ResilientWatch(opts.kubeconfig), opts.list, false, opts.labelSelector);
    const touch = () => {
      this.lastActivity = Date.now();
      this.failures = 0;
      opts.onActivity?.(this.lastActivity);
    };
    this.lw.on('add', (o) => {
      touch();
      opts.onChange(o, 'add');
    });
    this.lw.on('update', (o) => {
      touch();
      opts.onChange(o, 'update');
    });
    this.lw.on('delete', (o) => {
      touch();
      opts.onChange(o, 'delete');
    });
    this.lw.on('connect', () => touch());
    this.lw.on('error', (err: unknown) => this.restartLater(err));
  }

  async start(): Promise<void> {
    this.stopped = false;
    const stall = this.opts.stallAfterMs ?? 10 * 60_000;
    this.watchdog = setInterval(
      () => {
        if (Date.now() - this.lastActivity > stall) {
          this.opts.logger.warn(
            { resource: this.resource, silentForMs: Date.now() - this.lastActivity },
            'watch shows no activity; restarting it',
          );
          this.lastActivity = Date.now();
          void this.lw.stop().then(() => this.begin());
        }
      },
      Math.min(stall, 30_000),
    );
    this.watchdog.unref();
    await this.begin();
  }

  private async begin(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.lw.start();
      this.synced = true;
      this.lastActivity = Date.now();
    } catch (err) {
      this.restartLater(err);
    }
  }

  private restartLater(err: unknown): void {
    if (this.stopped || this.restartTimer) return;
    this.failures++;
    const delay = Math.min(1_000 * 2 ** (this.failures - 1), 30_000) * (0.8 + Math.random() * 0.4);
    this.opts.logger.warn(
      { resource: this.resource, err, retryInMs: Math.round(delay) },
      'list/watch failed; restarting',
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.begin();
    }, delay);
    this.restartTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.watchdog);
    clearTimeout(this.restartTimer);
    await this.lw.stop();
  }

  /** True once the first list has completed. */
  hasSynced(): boolean {
    return this.synced;
  }

  /** Milliseconds since the last sign of life of the watch. */
  silentForMs(): number {
    return Date.now() - this.lastActivity;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.lw.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.lw.list(namespace);
  }
}
