// The GCE provider: dedicated VMs added to the class's GKE node pool groups, which join the cluster
// by themselves (the pool's template carries the kubelet bootstrap, labels and taints).
//
// create() is idempotent three ways: (1) the VM name is derived from the Instance UID, so a VM
// already made (or being made) for the Instance is found in the class's groups and adopted; (2)
// createInstances carries a requestId derived from the members' UIDs, so a retry after a lost
// answer is the same request; (3) GCE allows one VM of a name per zone. VMs leave only through
// deleteInstances: a VM deleted directly would be recreated by its group.
import { TAG_INSTANCE } from '../../src/api/names.ts';
import type { InstanceClass } from '../../src/api/types.ts';
import type { Logger } from '../../src/log.ts';
import {
  InsufficientCapacityError,
  InvalidConfigError,
  NotFoundError,
  NotOwnedError,
  QuotaExceededError,
} from '../errors.ts';
import { isolationShortfall, requiredIsolation } from '../isolation.ts';
import { noOfferingInZones, UnavailableOfferings } from '../offerings.ts';
import type { CloudInstance, CloudProvider, LaunchRequest, Resources } from '../types.ts';
import { toCloudInstance, type Vm } from './vm.ts';
import { Coalescer } from '../aws/batch.ts';
import { realClock, type BucketShape, type Clock } from '../aws/ratelimit.ts';
import { allocatable } from './capacity.ts';
import { Compute, NO_GAX_RETRY, type ApiFamily } from './client.ts';
import { failedAttempt, GroupOps, type ManagedInstance, type MigInfo } from './groups.ts';
import { itemsError } from './errors.ts';
import {
  createdBy,
  LABEL_CLASS,
  LABEL_CLUSTER,
  LABEL_INSTANCE,
  labelValue,
  lastSegment,
  parseProviderId,
  providerIdOf,
  tagsOfLabels,
  vmName,
} from './names.ts';
import { migKey, migLabel, migsOf, validateGceSettings, type Mig } from './settings.ts';

export interface GceProviderOptions {
  /** Value of the ipp-dev-cluster label: which VMs this controller owns. */
  clusterName: string;
  /** Default project of classes without spec.gce.project; absent: the metadata server's. */
  project?: string;
  /** Tests only: the local fake's http://127.0.0.1:port. */
  endpoint?: string;
  logger: Logger;
  clock?: Clock;
  rates?: Partial<Record<ApiFamily, BucketShape>>;
  retry?: { attempts?: number; baseMs?: number; maxMs?: number };
  /** Most VMs one createInstances asks for; 1 asks for each alone. Default 100. */
  maxGroupSize?: number;
  /** How long a group that had no capacity is skipped. Default 3 minutes. */
  unavailableTtlMs?: number;
  /** How often an accepted VM is looked up until it exists. Default 1 s. */
  pollMs?: number;
  /** How long create() follows an accepted VM before returning it as pending. Default 2 minutes. */
  createTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** How long accepted() reuses a group's listing. */
const MEMBERS_TTL_MS = 10_000;

interface Member {
  req: LaunchRequest;
  name: string;
  mig: Mig;
  info: MigInfo;
}

/** A gate that runs one call at a time, in order. */
export function serial(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>) => {
    const next = tail.then(fn, fn);
    tail = next.catch(() => undefined);
    return next;
  };
}

export class GceProvider implements CloudProvider {
  readonly name = 'gce';
  private readonly opts: GceProviderOptions;
  private readonly compute: Compute;
  private readonly groups: GroupOps;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly unavailable: UnavailableOfferings;
  private readonly infos = new Map<string, { at: number; info: Promise<MigInfo> }>();
  /** Projects searched for this cluster's VMs: the default one and those launched in. */
  private readonly projects = new Set<string>();
  /** Projects only named by a class so far: searched too, but one that cannot be read is skipped. */
  private readonly named = new Set<string>();
  /** Named projects that could not be read, warned about once. */
  private readonly unreadable = new Set<string>();
  private defaultProject: Promise<string> | undefined;
  /**
   * Every valid class, by name: the InstanceClass controller validates each at start, so a restarted
   * controller knows the groups where a VM accepted but not created yet is listed (no VM to read).
   */
  private readonly classes = new Map<string, InstanceClass>();
  /** Group → its members by name, and when listed: accepted()'s lookups share one listing for a few seconds. */
  private readonly members = new Map<string, { at: number; byName: Promise<Map<string, ManagedInstance>> }>();

  constructor(opts: GceProviderOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? realClock;
    this.log = opts.logger.child({ provider: 'gce', cluster: opts.clusterName });
    // Labels are lowercase [a-z0-9_-]: a name labelValue() has to change ("Prod", "team.a") shares its
    // label with another cluster's ("prod", "team-a"), and each would take the other's VMs for leaks.
    // Said, not refused: a cluster that has run under such a name has its VMs labelled so already.
    if (labelValue(opts.clusterName) !== opts.clusterName)
      this.log.warn(
        `--cluster-name "${opts.clusterName}" labels GCE VMs ${LABEL_CLUSTER}=${labelValue(opts.clusterName)}: ` +
          `a cluster of that name in the same project would take this one's VMs for its own leaks. ` +
          `Make sure none shares that label, or use a lowercase name of letters, digits, "-" and "_"`,
      );
    this.compute = new Compute({
      project: opts.project,
      endpoint: opts.endpoint,
      clock: this.clock,
      rates: opts.rates,
      retry: opts.retry,
      env: opts.env,
    });
    this.groups = new GroupOps(this.compute, this.clock, opts.pollMs ?? 1_000);
    this.unavailable = new UnavailableOfferings(opts.unavailableTtlMs, () => this.clock.now());
    if (opts.project) this.defaultProject = Promise.resolve(opts.project);
    this.maxGroup = Math.max(1, opts.maxGroupSize ?? 100);
  }

  private readonly maxGroup: number;
  private readonly perGroup = new Map<
    string,
    { launches: Coalescer<Member, true>; lookups: Coalescer<string, ManagedInstance | null> }
  >();

  /**
   * One createInstances and one listManagedInstances in flight per group: what arrives meanwhile
   * waits and shares the next call, so a burst of one class costs a few calls per group, not one per pod.
   */
  private group(mig: Mig) {
    const key = migKey(mig);
    let g = this.perGroup.get(key);
    if (!g) {
      const creating = serial();
      const listing = serial();
      g = {
        launches: new Coalescer<Member, true>({
          gate: creating,
          take: (waiting) => Math.min(waiting.length, this.maxGroup),
          serve: (members) => this.accept(members),
          retry: (_members, e) => Promise.reject(e),
        }),
        lookups: new Coalescer<string, ManagedInstance | null>({
          gate: listing,
          take: (waiting) => waiting.length,
          serve: (names) => this.lookup(mig, names),
          retry: (_names, e) => Promise.reject(e),
        }),
      };
      this.perGroup.set(key, g);
    }
    return g;
  }

  validate(cls: InstanceClass): string[] {
    // Without --gce-project the metadata server names the project when create() first asks.
    const problems = validateGceSettings(cls, this.opts.project ?? 'from-metadata-server');
    // A class's own project is searched from now on (teardown, garbage collection): the InstanceClass
    // controller validates every class at start, so a restarted controller still finds the VMs it
    // made there before, not only those of classes it has launched for since.
    const own = cls.spec.gce?.project;
    if (own && !problems.length && !this.projects.has(own)) this.named.add(own);
    this.remember(cls, problems);
    return problems;
  }

  private remember(cls: InstanceClass, problems = validateGceSettings(cls, 'from-metadata-server')): void {
    if (!problems.length && cls.metadata.name) this.classes.set(cls.metadata.name, cls);
  }

  capacity(instanceType: string): Resources | undefined {
    return allocatable(instanceType);
  }

  private project(): Promise<string> {
    if (!this.defaultProject) {
      const p = this.compute.projectId().catch((e: unknown) => {
        this.defaultProject = undefined;
        throw new InvalidConfigError(
          `no default GCE project: set --gce-project or spec.gce.project (the metadata server did not name one: ${e instanceof Error ? e.message : String(e)})`,
          { cause: e },
        );
      });
      this.defaultProject = p;
    }
    return this.defaultProject;
  }

  /** The group's template facts, checked against the class; cached for 5 minutes. */
  private migInfo(mig: Mig, cls: InstanceClass): Promise<MigInfo> {
    const key = migKey(mig);
    const cached = this.infos.get(key);
    const info =
      cached && this.clock.now() - cached.at < 5 * 60_000
        ? cached.info
        : (() => {
            const p = this.groups.info(mig);
            this.infos.set(key, { at: this.clock.now(), info: p });
            p.catch(() => this.infos.get(key)?.info === p && this.infos.delete(key));
            return p;
          })();
    return info.then((i) => {
      const clsName = cls.metadata.name ?? '';
      const want = { [LABEL_CLUSTER]: labelValue(this.opts.clusterName), [LABEL_CLASS]: labelValue(clsName) };
      const missing = Object.entries(want).filter(([k, v]) => i.labels[k] !== v);
      if (missing.length)
        throw new InvalidConfigError(
          `InstanceClass ${clsName}: the instance template of ${migLabel(mig)} lacks the GCE labels ${missing.map(([k, v]) => `${k}=${v}`).join(', ')}; create the node pool with --labels=${LABEL_CLUSTER}=${want[LABEL_CLUSTER]},${LABEL_CLASS}=${want[LABEL_CLASS]} (they mark its VMs as this cluster's from the moment they exist)`,
        );
      const short = isolationShortfall(requiredIsolation(cls), i.isolation);
      if (short.length)
        throw new InvalidConfigError(
          `InstanceClass ${clsName}: the VMs of ${migLabel(mig)} (${i.machineType}) cannot deliver the class's host isolation: ${short.join('; ')}`,
        );
      if (!cls.spec.instanceTypes.includes(i.machineType))
        throw new InvalidConfigError(
          `InstanceClass ${clsName}: spec.instanceTypes does not list ${i.machineType}, the machine type of ${migLabel(mig)}`,
        );
      return i;
    });
  }

  async create(req: LaunchRequest): Promise<CloudInstance> {
    const cls = req.class;
    const clsName = cls.metadata.name ?? '';
    const problems = this.validate(cls);
    if (problems.length) throw new InvalidConfigError(`InstanceClass ${clsName}: ${problems.join('; ')}`);
    const project = await this.project();
    const migs = migsOf(cls, project).filter((m) => !req.zones || req.zones.includes(m.zone));
    if (!migs.length)
      throw new InvalidConfigError(
        noOfferingInZones(cls, req.instance.name, req.zones ?? [], [
          ...new Set(migsOf(cls, project).map((m) => m.zone)),
        ]),
      );
    for (const m of migs) {
      this.projects.add(m.project);
      this.named.delete(m.project);
    }
    const name = vmName(req.instance.uid, req.instance.name);
    const log = this.log.child({ instance: req.instance.name, class: clsName, vm: name });

    const found = await this.find(name, migs);
    if (found) {
      const errors = failedAttempt(found.mi);
      if (!errors) {
        log.info({ mig: migLabel(found.mig) }, 'VM already added for this Instance; following it');
        return this.follow({ req, name, mig: found.mig, info: await this.migInfo(found.mig, cls) });
      }
      // An earlier attempt is stuck (stockout, quota): take it out so the group stops retrying,
      // and skip that group for a while like any other that had no capacity.
      await this.groups.delete(found.mig, [name]);
      const info = await this.migInfo(found.mig, cls);
      this.unavailable.mark({ instanceType: info.machineType, zone: found.mig.zone });
    }

    const reasons: string[] = [];
    const failures: InsufficientCapacityError[] = [];
    for (const mig of migs) {
      const info = await this.migInfo(mig, cls);
      const offering = { instanceType: info.machineType, zone: mig.zone };
      if (this.unavailable.isUnavailable(offering)) {
        reasons.push(`${migLabel(mig)} (${info.machineType}): recently without capacity`);
        continue;
      }
      try {
        const member = { req, name, mig, info };
        await this.group(mig).launches.submit('create', member);
        return await this.follow(member);
      } catch (e) {
        if (!(e instanceof InsufficientCapacityError)) throw e;
        this.unavailable.mark(offering);
        failures.push(e);
        reasons.push(e.message);
        log.info({ mig: migLabel(mig), err: e.message }, 'no capacity in this group; trying the next');
      }
    }
    const msg = `InstanceClass ${clsName}: no group of spec.gce.instanceGroups could make VM ${name} (${reasons.join('; ')})`;
    const offerings = failures.flatMap((f) => f.offerings);
    if (failures.length && failures.every((f) => f instanceof QuotaExceededError))
      throw new QuotaExceededError(msg, offerings, { cause: failures[0] });
    throw new InsufficientCapacityError(msg, offerings, failures.length ? { cause: failures.at(-1) } : undefined);
  }

  /** The managed instance of that name in any of the groups. */
  private async find(name: string, migs: Mig[]): Promise<{ mig: Mig; mi: ManagedInstance } | undefined> {
    for (const mig of migs) {
      const mi = await this.lookupOne(mig, name);
      if (mi) return { mig, mi };
    }
    return undefined;
  }

  private lookupOne(mig: Mig, name: string): Promise<ManagedInstance | null> {
    return this.group(mig).lookups.submit('list', name);
  }

  private async lookup(mig: Mig, names: string[]): Promise<(ManagedInstance | null)[]> {
    const all = await this.groups.list(mig);
    const byName = new Map(all.map((mi) => [mi.name ?? lastSegment(mi.instance), mi]));
    return names.map((n) => byName.get(n) ?? null);
  }

  /** One createInstances for every member waiting on the same group. */
  private async accept(members: Member[]): Promise<(true | Error)[]> {
    const { mig, info } = members[0]!;
    try {
      await this.groups.create(
        mig,
        members.map((m) => m.name),
        members.map((m) => m.req.instance.uid),
        info.machineType,
      );
      return members.map(() => true as const);
    } catch (e) {
      return members.map(() => (e instanceof Error ? e : new Error(String(e))));
    }
  }

  /**
   * Follows an accepted VM until it exists (then labels it with its Instance) or its group reports
   * that it cannot make it (then takes it out of the group and reports why). Still being created
   * when the time is up: returned as pending, the Instance's launch timeout watches it from there.
   */
  private async follow(m: Member): Promise<CloudInstance> {
    const deadline = this.clock.now() + (this.opts.createTimeoutMs ?? 120_000);
    const offering = { instanceType: m.info.machineType, zone: m.mig.zone };
    // GCE lists an accepted name at once; one that is not (or no longer) listed was removed.
    const listedBy = this.clock.now() + 30_000;
    let seen = false;
    for (;;) {
      const mi = await this.lookupOne(m.mig, m.name);
      if (!mi && (seen || this.clock.now() >= listedBy))
        throw new Error(
          `VM ${m.name} left ${migLabel(m.mig)} before it was created (removed by someone else); the next reconcile asks again`,
        );
      if (mi) {
        seen = true;
        const errors = failedAttempt(mi);
        if (errors) {
          await this.groups.delete(m.mig, [m.name]).catch((e: unknown) => {
            if (!(e instanceof NotFoundError)) throw e;
          });
          throw itemsError(errors, `${migLabel(m.mig)} could not create VM ${m.name}`, offering);
        }
        if (mi.instanceStatus) return this.labelled(m);
      }
      if (this.clock.now() >= deadline) {
        this.log.warn({ vm: m.name, mig: migLabel(m.mig) }, 'VM accepted but not created yet; returning it as pending');
        return {
          providerID: providerIdOf(m.mig.project, m.mig.zone, m.name),
          instanceType: m.info.machineType,
          zone: m.mig.zone,
          state: 'pending',
          tags: { ...tagsOfLabels(m.info.labels), [TAG_INSTANCE]: m.req.instance.name },
          launchedAt: new Date(this.clock.now()),
          hostIsolation: m.info.isolation,
        };
      }
      await this.clock.sleep(this.opts.pollMs ?? 1_000);
    }
  }

  /** The cluster and class labels come from the template; the Instance's is added once the VM exists. */
  private async labelled(m: Member): Promise<CloudInstance> {
    const vm = await this.groups.label(m.mig, m.name, { [LABEL_INSTANCE]: labelValue(m.req.instance.name) });
    const ci = toCloudInstance(vm, m.mig.project);
    ci.tags[TAG_INSTANCE] = m.req.instance.name;
    ci.hostIsolation = m.info.isolation;
    return ci;
  }

  /** A VM of this cluster; NotFoundError when gone, NotOwnedError when not labelled for this cluster. */
  private async owned(providerID: string): Promise<{ vm: Vm; project: string }> {
    const { project, zone, name } = parseProviderId(providerID);
    const vm = await this.groups.vm(project, zone, name);
    if (vm.labels?.[LABEL_CLUSTER] !== labelValue(this.opts.clusterName))
      throw new NotOwnedError(
        `GCE VM ${zone}/${name} is not labelled ${LABEL_CLUSTER}=${labelValue(this.opts.clusterName)}; ipp leaves it alone ` +
          `(if this cluster's VMs carry another name, --cluster-name was changed: set it back)`,
      );
    return { vm, project };
  }

  /**
   * A VM its group accepted but has not made yet (still trying: a stockout, quota, a slow zone): no VM
   * to read, but not gone either. Looked for in the groups of the known classes in its project and
   * zone; a group that no longer exists is passed over, one that cannot be listed fails the lookup. Each
   * group's members are listed at most every few seconds: garbage collection asks about each pending
   * VM in turn, and every VM really gone asks too.
   */
  private async accepted(
    providerID: string,
    of?: InstanceClass,
  ): Promise<{ mig: Mig; cls: InstanceClass; mi: ManagedInstance } | undefined> {
    const { project, zone, name } = parseProviderId(providerID);
    const fallback = await this.project();
    const seen = new Set<string>();
    for (const cls of this.classes.values())
      for (const mig of migsOf(cls, fallback)) {
        const key = migKey(mig);
        if (mig.project !== project || mig.zone !== zone || seen.has(key)) continue;
        seen.add(key);
        let members = this.members.get(key);
        if (!members || this.clock.now() - members.at >= MEMBERS_TTL_MS) {
          members = {
            at: this.clock.now(),
            byName: this.groups
              .list(mig)
              .then((l) => new Map(l.map((mi) => [mi.name ?? lastSegment(mi.instance), mi]))),
          };
          this.members.set(key, members);
        }
        try {
          const mi = (await members.byName).get(name);
          if (mi) return { mig, cls, mi };
        } catch (e) {
          this.members.delete(key);
          // A group that is gone (its class deleted) holds nothing. Any other failure leaves the VM's
          // fate unknown: answering "not found" would let a caller delete its Instance or drop its
          // finalizer while the group still makes the VM. Where the caller names the VM's class,
          // only that class's groups can hold it: another's failing does not hide it.
          if (!(e instanceof NotFoundError) && (!of || migsOf(of, fallback).some((m) => migKey(m) === key))) throw e;
          this.log.debug({ mig: migLabel(mig), vm: name }, 'a group is gone while looking for a VM not made yet');
        }
      }
    return undefined;
  }

  /**
   * The VM, or the group that accepted it and has not made it yet; NotFoundError when neither, and
   * NotOwnedError as owned() says. `cls`: the Instance's class, when the caller knows it.
   */
  private async locate(
    providerID: string,
    cls: InstanceClass | undefined,
  ): Promise<{ vm: Vm; project: string } | { pending: { mig: Mig; cls: InstanceClass; mi: ManagedInstance } }> {
    if (cls) this.remember(cls);
    try {
      return await this.owned(providerID);
    } catch (e) {
      const pending = e instanceof NotFoundError ? await this.accepted(providerID, cls) : undefined;
      if (!pending) throw e;
      return { pending };
    }
  }

  async get(providerID: string, cls?: InstanceClass): Promise<CloudInstance> {
    const found = await this.locate(providerID, cls);
    if ('vm' in found) return toCloudInstance(found.vm, found.project);
    const { mig, cls: of } = found.pending;
    const info = await this.migInfo(mig, of);
    return {
      providerID,
      instanceType: info.machineType,
      zone: mig.zone,
      state: 'pending',
      tags: tagsOfLabels(info.labels),
      launchedAt: new Date(this.clock.now()),
      hostIsolation: info.isolation,
    };
  }

  /**
   * A VM its group accepted and keeps failing to make (lastAttempt: a stockout, a quota): the group
   * would retry there until capacity comes back, however long, while other groups of the class may
   * have some. Cluster Autoscaler gives up on such members too.
   */
  async stalled(providerID: string, cls: InstanceClass): Promise<Error | undefined> {
    let found;
    try {
      found = await this.locate(providerID, cls);
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
    if ('vm' in found) return undefined;
    const { mig, mi, cls: of } = found.pending;
    const errors = failedAttempt(mi);
    if (!errors) return undefined;
    const info = await this.migInfo(mig, of);
    const offering = { instanceType: info.machineType, zone: mig.zone };
    const err = itemsError(errors, `${migLabel(mig)} keeps failing to create VM ${mi.name ?? providerID}`, offering);
    if (err instanceof InsufficientCapacityError) this.unavailable.mark(offering);
    return err;
  }

  async delete(providerID: string, cls?: InstanceClass): Promise<void> {
    const found = await this.locate(providerID, cls);
    if (!('vm' in found)) {
      const { mig } = found.pending;
      // Taken out of its group, or the group would make it the moment capacity comes back.
      await this.groups.delete(mig, [parseProviderId(providerID).name]);
      this.members.delete(migKey(mig));
      this.log.info({ providerID, mig: migLabel(mig) }, 'VM not created yet; removed from its group');
      return;
    }
    const { vm } = found;
    const mig = createdBy(vm.metadata);
    if (!mig)
      throw new InvalidConfigError(
        `GCE VM ${providerID} belongs to no managed instance group; ipp removes VMs only through their group (deleteInstances) and leaves this one alone`,
      );
    await this.groups.delete(mig, [vm.name ?? '']);
    this.log.info({ providerID, mig: migLabel(mig) }, 'VM removed from its group');
  }

  /** Every VM labelled for this cluster, in the default project and every project a class named. */
  list(): Promise<CloudInstance[]> {
    return this.listLabelled({});
  }

  /**
   * VMs labelled with this Instance's name: one filtered aggregatedList per project, so a teardown
   * wave does not list the whole cluster once per Instance. A VM whose Instance label was never
   * written (the controller died between the VM's creation and its labelling) is not found here;
   * garbage collection knows it by its name and terminates it after its grace period.
   */
  findByInstance(instance: string): Promise<CloudInstance[]> {
    return this.listLabelled({ [LABEL_INSTANCE]: labelValue(instance) });
  }

  /** The group members labelled for this cluster and with `labels`, in every project ipp knows. */
  private async listLabelled(labels: Record<string, string>): Promise<CloudInstance[]> {
    this.projects.add(await this.project());
    // GCE's list filter: one expression as it is, several each within parentheses, joined by AND.
    const clauses = Object.entries({ [LABEL_CLUSTER]: labelValue(this.opts.clusterName), ...labels }).map(
      ([k, v]) => `labels.${k} = "${v}"`,
    );
    const filter = clauses.length > 1 ? clauses.map((x) => `(${x})`).join(' AND ') : clauses[0]!;
    // Zones where this cluster's groups make VMs: one of them unreachable leaves the list unknown.
    // Any other zone of the project (the list covers them all) holds none of ours.
    const fallback = await this.project();
    const ours = new Set<string>();
    for (const cls of this.classes.values()) for (const mig of migsOf(cls, fallback)) ours.add(`zones/${mig.zone}`);
    const out: CloudInstance[] = [];
    for (const project of [...this.projects, ...this.named]) {
      let vms: Vm[];
      try {
        vms = await this.compute.call('read', `instances.aggregatedList in ${project} (${filter})`, async () => {
          const found: Vm[] = [];
          const pages = this.compute.instances.aggregatedListAsync({ project, filter, maxResults: 500 }, NO_GAX_RETRY);
          for await (const [scope, scoped] of pages) {
            // A zone GCE could not reach lists nothing, which is not "no VMs there": a teardown would
            // miss a copy, and garbage collection judge from half a list.
            if (String(scoped.warning?.code ?? '') === 'UNREACHABLE' && ours.has(scope))
              throw new Error(
                `${scope} could not be listed: ${scoped.warning?.message ?? 'unreachable'}; will try again`,
              );
            found.push(...(scoped.instances ?? []));
          }
          return found;
        });
      } catch (e) {
        // A project a class only names (a typo, no permission) must not stop every teardown and
        // collection of the provider: nothing was launched there by this process.
        if (!this.named.has(project) || !(e instanceof InvalidConfigError || e instanceof NotFoundError)) throw e;
        if (!this.unreadable.has(project))
          this.log.warn({ project, err: e }, `cannot list VMs in project ${project}, which a class names; skipping it`);
        this.unreadable.add(project);
        continue;
      }
      // Only group members: ipp never deletes a VM it could not remove through its group.
      for (const vm of vms) if (createdBy(vm.metadata)) out.push(toCloudInstance(vm, project));
    }
    return out;
  }

  async close(): Promise<void> {
    await this.compute.close();
  }
}

export function createGceProvider(opts: GceProviderOptions): GceProvider {
  return new GceProvider(opts);
}
