// The state of the fake Compute Engine: instance templates, zonal managed instance groups, VMs and
// zone operations, moving through time as GCE does (written from the Compute Engine v1 REST
// reference): an operation goes PENDING → RUNNING → DONE; createInstances is DONE once the group
// has *accepted* the names (managed instances with currentAction CREATING), and each VM exists
// only later (instanceStatus PROVISIONING → STAGING → RUNNING, currentAction NONE); a stockout or
// quota shortage leaves the managed instance CREATING with lastAttempt.errors while the group keeps
// retrying; deleteInstances shrinks the group; a VM deleted directly is recreated by its group.
import { randomUUID } from 'node:crypto';

export interface FakeTemplate {
  name: string;
  /** Regional template (GKE node pools use these): its region. */
  region?: string;
  machineType: string;
  labels: Record<string, string>;
  /** Further template properties as the API returns them (scheduling, advancedMachineFeatures). */
  extra?: Record<string, unknown>;
}

export interface FakeMigNode {
  /** Kubernetes labels the pool's kubelets register with (GKE: the node pool's labels). */
  labels: Record<string, string>;
  taints: { key: string; value: string; effect: string }[];
}

export interface FakeMig {
  project: string;
  zone: string;
  name: string;
  template: string;
  node: FakeMigNode;
}

export interface ErrorItem {
  code: string;
  message: string;
}

export interface FakeOperation {
  id: string;
  name: string;
  zone: string;
  project: string;
  operationType: string;
  targetLink: string;
  insertTime: string;
  status: 'PENDING' | 'RUNNING' | 'DONE';
  error?: { errors: ErrorItem[] };
  runningAt: number;
  doneAt: number;
  /** Applied once, when the operation becomes DONE. */
  effect?: () => ErrorItem[] | void;
}

export interface ManagedRecord {
  name: string;
  mig: FakeMig;
  currentAction: 'CREATING' | 'DELETING' | 'RECREATING' | 'NONE';
  lastAttempt?: ErrorItem[];
  /** When the group next tries to make the VM. */
  nextTryAt: number;
}

export interface FakeVm {
  id: string;
  name: string;
  project: string;
  zone: string;
  machineType: string;
  status: 'PROVISIONING' | 'STAGING' | 'RUNNING' | 'STOPPING';
  labels: Record<string, string>;
  labelFingerprint: string;
  creationTimestamp: string;
  createdBy?: FakeMig;
  createdAt: number;
  stoppingAt?: number;
}

export interface Timings {
  /** Operation PENDING → RUNNING and RUNNING → DONE. */
  operationMs: number;
  /** Accepted name → VM exists (PROVISIONING). */
  createMs: number;
  /** PROVISIONING → RUNNING. */
  bootMs: number;
  /** STOPPING → gone. */
  deleteMs: number;
  /** Retry interval of a failed create. */
  retryMs: number;
}

export interface StateHooks {
  vmRunning?(vm: FakeVm, mig: FakeMig | undefined): Promise<void> | void;
  vmGone?(vm: FakeVm): Promise<void> | void;
}

export const selfLink = (base: string, path: string) => `${base}/compute/v1/projects/${path}`;

export class FakeCompute {
  readonly templates = new Map<string, FakeTemplate>();
  readonly migs = new Map<string, FakeMig>();
  readonly managed = new Map<string, ManagedRecord>();
  readonly vms = new Map<string, FakeVm>();
  readonly operations = new Map<string, FakeOperation>();
  readonly requestIds = new Map<string, string>();
  /** `machineType/zone` (or `machineType/*`) without capacity: creates fail with a stockout. */
  readonly stockouts = new Set<string>();
  /** Zones whose CPU quota is used up. */
  readonly quotaExhausted = new Set<string>();
  /** Zones an aggregated list cannot reach: their scope answers a warning UNREACHABLE and no VMs. */
  readonly unreachable = new Set<string>();
  timings: Timings = { operationMs: 50, createMs: 150, bootMs: 150, deleteMs: 150, retryMs: 500 };
  private readonly hooks: StateHooks;
  private seq = 0;
  constructor(hooks: StateHooks = {}) {
    this.hooks = hooks;
  }

  static migKey = (project: string, zone: string, name: string) => `${project}/${zone}/${name}`;
  static vmKey = (project: string, zone: string, name: string) => `${project}/${zone}/${name}`;

  addTemplate(t: FakeTemplate): void {
    this.templates.set(t.name, t);
  }

  addMig(m: FakeMig): void {
    this.migs.set(FakeCompute.migKey(m.project, m.zone, m.name), m);
  }

  /** Managed instances of a group, in name order. */
  members(mig: FakeMig): ManagedRecord[] {
    return [...this.managed.values()].filter((r) => r.mig === mig).sort((a, b) => a.name.localeCompare(b.name));
  }

  targetSize(mig: FakeMig): number {
    return this.members(mig).filter((r) => r.currentAction !== 'DELETING').length;
  }

  /** A new operation; `effect` runs when it is DONE, its error items become the operation's error. */
  operation(
    project: string,
    zone: string,
    operationType: string,
    targetLink: string,
    requestId: string | null,
    effect?: () => ErrorItem[] | void,
  ): FakeOperation {
    const key = requestId ? `${project}/${requestId}` : undefined;
    const existing = key ? this.operations.get(this.requestIds.get(key) ?? '') : undefined;
    if (existing) return existing;
    const now = Date.now();
    const op: FakeOperation = {
      id: String(1_000_000 + ++this.seq),
      name: `operation-${now}-${randomUUID().slice(0, 8)}`,
      zone,
      project,
      operationType,
      targetLink,
      insertTime: new Date(now).toISOString(),
      status: 'PENDING',
      runningAt: now + this.timings.operationMs,
      doneAt: now + 2 * this.timings.operationMs,
      effect,
    };
    this.operations.set(op.name, op);
    if (key) this.requestIds.set(key, op.name);
    return op;
  }

  /** Moves everything along to `now`. */
  async step(now = Date.now()): Promise<void> {
    for (const op of this.operations.values()) {
      if (op.status === 'PENDING' && now >= op.runningAt) op.status = 'RUNNING';
      if (op.status === 'RUNNING' && now >= op.doneAt) {
        const errors = op.effect?.();
        if (errors && errors.length) op.error = { errors };
        op.status = 'DONE';
      }
    }
    for (const r of this.managed.values()) {
      const key = FakeCompute.vmKey(r.mig.project, r.mig.zone, r.name);
      if ((r.currentAction === 'CREATING' || r.currentAction === 'RECREATING') && now >= r.nextTryAt) {
        if (this.vms.has(key)) continue;
        const tpl = this.templates.get(r.mig.template)!;
        const failure = this.createFailure(tpl.machineType, r.mig.zone);
        if (failure) {
          r.lastAttempt = [failure];
          r.currentAction = 'CREATING';
          r.nextTryAt = now + this.timings.retryMs;
          continue;
        }
        r.lastAttempt = undefined;
        this.vms.set(key, {
          id: String(5_000_000_000 + ++this.seq),
          name: r.name,
          project: r.mig.project,
          zone: r.mig.zone,
          machineType: tpl.machineType,
          status: 'PROVISIONING',
          labels: { ...tpl.labels },
          labelFingerprint: randomUUID().slice(0, 12),
          creationTimestamp: new Date(now).toISOString(),
          createdBy: r.mig,
          createdAt: now,
        });
      }
    }
    for (const [key, vm] of this.vms) {
      const r = vm.createdBy ? this.managed.get(key) : undefined;
      if (vm.status === 'PROVISIONING' && now >= vm.createdAt + this.timings.bootMs / 2) vm.status = 'STAGING';
      if (vm.status === 'STAGING' && now >= vm.createdAt + this.timings.bootMs) {
        vm.status = 'RUNNING';
        if (r) r.currentAction = 'NONE';
        await this.hooks.vmRunning?.(vm, vm.createdBy);
      }
      if (vm.status === 'STOPPING' && now >= (vm.stoppingAt ?? 0) + this.timings.deleteMs) {
        this.vms.delete(key);
        if (r?.currentAction === 'DELETING') this.managed.delete(key);
        else if (r) {
          // Deleted behind the group's back: the group makes it again under the same name.
          r.currentAction = 'RECREATING';
          r.nextTryAt = now + this.timings.createMs;
        }
        await this.hooks.vmGone?.(vm);
      }
    }
    for (const [key, r] of this.managed)
      if (r.currentAction === 'DELETING' && !this.vms.has(key)) this.managed.delete(key);
  }

  private createFailure(machineType: string, zone: string): ErrorItem | undefined {
    if (this.stockouts.has(`${machineType}/${zone}`) || this.stockouts.has(`${machineType}/*`))
      return {
        code: 'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS',
        message: `The zone '${zone}' does not have enough resources available to fulfill the request. '(resource type:compute)'.`,
      };
    if (this.quotaExhausted.has(zone))
      return {
        code: 'QUOTA_EXCEEDED',
        message: `Quota 'CPUS' exceeded. Limit: 24.0 in region ${zone.replace(/-[a-z]$/, '')}.`,
      };
    return undefined;
  }

  /** createInstances accepted: the names join the group as CREATING. */
  accept(mig: FakeMig, names: string[]): ErrorItem[] | void {
    const taken = names.filter(
      (n) =>
        this.managed.has(FakeCompute.vmKey(mig.project, mig.zone, n)) ||
        this.vms.has(FakeCompute.vmKey(mig.project, mig.zone, n)),
    );
    if (taken.length)
      return taken.map((n) => ({
        code: 'RESOURCE_ALREADY_EXISTS',
        message: `The resource 'projects/${mig.project}/zones/${mig.zone}/instances/${n}' already exists`,
      }));
    const at = Date.now() + this.timings.createMs;
    for (const name of names)
      this.managed.set(FakeCompute.vmKey(mig.project, mig.zone, name), {
        name,
        mig,
        currentAction: 'CREATING',
        nextTryAt: at,
      });
  }

  /** deleteInstances: the named members leave the group (their VMs stop, then go). */
  remove(mig: FakeMig, names: string[], skipInvalid: boolean): ErrorItem[] | void {
    const missing = names.filter((n) => !this.managed.has(FakeCompute.vmKey(mig.project, mig.zone, n)));
    if (missing.length && !skipInvalid)
      return missing.map((n) => ({
        code: 'RESOURCE_NOT_FOUND',
        message: `The resource 'projects/${mig.project}/zones/${mig.zone}/instances/${n}' is not a member of ${mig.name}`,
      }));
    for (const n of names) {
      const key = FakeCompute.vmKey(mig.project, mig.zone, n);
      const r = this.managed.get(key);
      if (!r) continue;
      r.currentAction = 'DELETING';
      this.stop(key);
    }
  }

  /** instances.delete: the VM stops and goes (its group, if any, will make it again). */
  stop(key: string): void {
    const vm = this.vms.get(key);
    if (vm && vm.status !== 'STOPPING') {
      vm.status = 'STOPPING';
      vm.stoppingAt = Date.now();
    }
  }
}
