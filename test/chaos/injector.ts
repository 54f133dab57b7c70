// Fires the seeded fault schedule at the world: SIGKILL of the controller (started again after the
// scheduled delay), a kube-apiserver restart (same port, same etcd), deletion of ipp Nodes, and cloud
// fault windows written to the simulated provider's fault file. It counts what really happened: a
// cloud fault counts the calls the provider faulted (its `.fired` file), not the windows opened.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { NODE_INSTANCE_LABEL } from '../../src/api/names.ts';
import type { FaultFile, FaultKind as CloudFaultKind, FaultWindow } from '../../providers/simulated/faults.ts';
import { Random } from './random.ts';
import { FAULT_KINDS, type Fault, type FaultKind } from './schedule.ts';
import { SYSTEM_NAMESPACE, type World } from './world.ts';

const CLOUD: Partial<Record<FaultKind, CloudFaultKind>> = {
  'cloud-capacity': 'capacity',
  'cloud-throttle': 'throttle',
  'cloud-5xx': 'error',
  'cloud-slow': 'slow',
};
/** How often a first-of-its-kind fault is tried again when it found nothing to act on (every 2 s, or window). */
const ENSURE_ATTEMPTS = 30;

export interface Tally {
  /** Scheduled faults that acted (cloud: windows opened). */
  fired: number;
  /** Nodes deleted; cloud calls faulted. */
  effects: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class FaultInjector {
  readonly tally = Object.fromEntries(FAULT_KINDS.map((k) => [k, { fired: 0, effects: 0 }])) as Record<
    FaultKind,
    Tally
  >;
  private readonly w: World;
  private readonly r: Random;
  private readonly log: (line: string) => void;
  private readonly retries: Promise<void>[] = [];
  private leaseHolder: string | undefined;

  constructor(w: World, seed: number, log: (line: string) => void) {
    this.w = w;
    this.r = Random.fork(seed, 'targets');
    this.log = log;
  }

  /** Fires `schedule` (offsets from `startedAt`) until it ends or `stopped()` says so. */
  async run(schedule: Fault[], startedAt: number, stopped: () => boolean): Promise<void> {
    for (const f of schedule) {
      const wait = startedAt + f.at - Date.now();
      if (wait > 0) await sleep(wait);
      if (stopped()) break;
      await this.attempt(f, 0);
    }
    // Retries may queue further retries.
    while (this.retries.length) await this.retries.shift();
  }

  /** Closes every cloud window and makes sure the controller runs: the end of the chaos. */
  async calm(): Promise<void> {
    this.writeWindows([]);
    for (const c of this.w.controllers) await c.start();
    this.countCloudEffects();
  }

  private async fire(f: Fault, attempt: number): Promise<void> {
    const t = this.tally[f.kind];
    switch (f.kind) {
      case 'controller-kill': {
        this.leaseHolder = await this.w.c.kc
          .makeApiClient(CoordinationV1Api)
          .readNamespacedLease({ name: 'ipp-controller', namespace: SYSTEM_NAMESPACE })
          .then((l) => l.spec?.holderIdentity ?? undefined)
          .catch(() => undefined);
        const running = this.w.controllers.filter((c) => c.running());
        if (!running.length) return this.again(f, attempt);
        // Mostly the leader (a failover mid-provisioning), sometimes a standby.
        const leader = running.find((c) => c.identity === this.leaseHolder);
        const pickLeader = this.r.chance(0.7);
        const victim = leader && pickLeader ? leader : this.r.pick(running);
        await victim.kill();
        t.fired++;
        this.log(
          `fault: controller ${victim.identity}${victim === leader ? ' (leader)' : ''} SIGKILLed, back in ${f.downMs} ms`,
        );
        await sleep(f.downMs);
        await victim.start();
        return;
      }
      case 'apiserver-restart': {
        const began = Date.now();
        await this.w.plane.restartApiServer(f.signal);
        t.fired++;
        this.log(`fault: kube-apiserver restarted (${f.signal}), ready again after ${Date.now() - began} ms`);
        return;
      }
      case 'node-delete': {
        const nodes = (await this.w.c.core.listNode({ labelSelector: NODE_INSTANCE_LABEL })).items;
        if (!nodes.length) return this.again(f, attempt);
        const victims = this.r.shuffle(nodes).slice(0, f.nodes);
        for (const n of victims) await this.w.c.core.deleteNode({ name: n.metadata!.name! });
        t.fired++;
        t.effects += victims.length;
        this.log(`fault: deleted Node(s) ${victims.map((n) => n.metadata!.name).join(', ')}`);
        return;
      }
      default: {
        const kind = CLOUD[f.kind]!;
        const before = this.firedCalls(kind);
        const until = Date.now() + f.windowMs;
        const windows: FaultWindow[] =
          f.kind === 'cloud-capacity'
            ? f.zones.map((zone) => ({ kind, until, zone }))
            : [
                {
                  kind,
                  until,
                  probability: f.probability,
                  ...(f.kind === 'cloud-5xx' ? { afterEffect: f.afterEffect } : {}),
                  ...(f.kind === 'cloud-slow' ? { delayMs: f.delayMs } : {}),
                },
              ];
        this.writeWindows([...this.openWindows(), ...windows]);
        t.fired++;
        this.log(`fault: cloud ${kind} for ${f.windowMs} ms ${JSON.stringify(windows.map(({ until: _, ...w }) => w))}`);
        if (f.ensure)
          this.retries.push(
            sleep(f.windowMs + 100).then(() =>
              this.firedCalls(kind) > before ? undefined : this.again(f, attempt, 0),
            ),
          );
        return;
      }
    }
  }

  /**
   * A first-of-its-kind fault that found nothing to act on (no node yet, the controller down, no
   * cloud call in the window) is tried again, so that every kind fires in even a short run.
   */
  private again(f: Fault, attempt: number, waitMs = 2_000): void {
    if (!f.ensure) return;
    if (attempt + 1 >= ENSURE_ATTEMPTS) {
      this.log(`fault ${f.kind}: found nothing to act on ${ENSURE_ATTEMPTS} times; given up`);
      return;
    }
    // In the background: the schedule goes on meanwhile; run() waits for these before it ends.
    this.retries.push(sleep(waitMs).then(() => this.attempt(f, attempt + 1)));
  }

  /** Fires `f`; a failure (kube-apiserver restarting) counts as finding nothing to act on. */
  private async attempt(f: Fault, attempt: number): Promise<void> {
    try {
      await this.fire(f, attempt);
    } catch (e) {
      this.log(`fault ${f.kind} at ${f.at} ms (attempt ${attempt + 1}) failed: ${(e as Error).message.split('\n')[0]}`);
      this.again(f, attempt);
    }
  }

  private openWindows(): FaultWindow[] {
    try {
      const f = JSON.parse(readFileSync(this.w.faultFile, 'utf8')) as FaultFile;
      return f.windows.filter((w) => w.until > Date.now());
    } catch {
      return [];
    }
  }

  private writeWindows(windows: FaultWindow[]): void {
    // Atomically: the provider must never read half a file.
    writeFileSync(`${this.w.faultFile}.tmp`, JSON.stringify({ windows } satisfies FaultFile));
    renameSync(`${this.w.faultFile}.tmp`, this.w.faultFile);
  }

  private firedCalls(kind: CloudFaultKind): number {
    try {
      return readFileSync(`${this.w.faultFile}.fired`, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith(`${kind} `)).length;
    } catch {
      return 0;
    }
  }

  private countCloudEffects(): void {
    for (const [k, kind] of Object.entries(CLOUD)) this.tally[k as FaultKind].effects = this.firedCalls(kind);
  }
}
