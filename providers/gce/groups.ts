// What ipp does with a managed instance group: read its template, add VMs by name
// (createInstances), follow them (listManagedInstances), remove them (deleteInstances), and wait
// for the zone operations in between. GCE semantics this relies on:
// - an operation is PENDING → RUNNING → DONE, and DONE with `error` means the request failed;
// - createInstances is DONE once *accepted*: the VMs appear in listManagedInstances with
//   currentAction CREATING, get an instanceStatus once they exist, and report a failure to create
//   (stockout, quota) in lastAttempt.errors while the group keeps retrying;
// - the same requestId within an hour gets the first call's operation back, even a failed one.
import { randomUUID } from 'node:crypto';
import type { protos } from '@google-cloud/compute';
import type { HostIsolation } from '../../src/api/types.ts';
import { InvalidConfigError, NotFoundError } from '../errors.ts';
import type { Clock } from '../aws/ratelimit.ts';
import { NO_GAX_RETRY, type Compute } from './client.ts';
import { classifyItems, itemsError } from './errors.ts';
import { templateIsolation } from './isolation.ts';
import { lastSegment, requestId } from './names.ts';
import { migKey, migLabel, type Mig } from './settings.ts';

type Operation = protos.google.cloud.compute.v1.IOperation;
export type ManagedInstance = protos.google.cloud.compute.v1.IManagedInstance;

export interface MigInfo {
  machineType: string;
  /** What the group's VMs obtain (machine type, sole tenancy, SMT, nested virtualization). */
  isolation: HostIsolation;
  /** GCE labels every VM of the group gets from its template (the node pool's resource labels). */
  labels: Record<string, string>;
}

/** A managed instance that failed to become a VM: GCE says why in lastAttempt while it retries. */
export function failedAttempt(mi: ManagedInstance): { code?: string | null; message?: string | null }[] | undefined {
  const errors = mi.lastAttempt?.errors?.errors ?? [];
  if (!errors.length || mi.instanceStatus) return undefined;
  return errors;
}

/** The operation as the client's LRO wrapper or as the bare resource. */
const bare = (op: unknown): Operation =>
  ((op as { latestResponse?: Operation }).latestResponse ?? (op as Operation)) as Operation;

export class GroupOps {
  private readonly compute: Compute;
  private readonly clock: Clock;
  private readonly pollMs: number;
  constructor(compute: Compute, clock: Clock, pollMs: number) {
    this.compute = compute;
    this.clock = clock;
    this.pollMs = pollMs;
  }

  /** The group's machine type and template labels. */
  async info(mig: Mig): Promise<MigInfo> {
    const [igm] = await this.compute.call('read', `instanceGroupManagers.get ${migLabel(mig)}`, () =>
      this.compute.migs.get({ project: mig.project, zone: mig.zone, instanceGroupManager: mig.name }, NO_GAX_RETRY),
    );
    const url = igm.instanceTemplate ?? '';
    const regional = /\/regions\/([^/]+)\/instanceTemplates\//.exec(url);
    const what = `instance template ${lastSegment(url)} of ${migLabel(mig)}`;
    const [template] = regional
      ? await this.compute.call('read', `regionInstanceTemplates.get ${what}`, () =>
          this.compute.regionTemplates.get(
            { project: mig.project, region: regional[1]!, instanceTemplate: lastSegment(url) },
            NO_GAX_RETRY,
          ),
        )
      : await this.compute.call('read', `instanceTemplates.get ${what}`, () =>
          this.compute.templates.get({ project: mig.project, instanceTemplate: lastSegment(url) }, NO_GAX_RETRY),
        );
    const machineType = lastSegment(template.properties?.machineType);
    if (!machineType) throw new InvalidConfigError(`${what} names no machine type`);
    return {
      machineType,
      isolation: templateIsolation(machineType, template.properties),
      labels: { ...template.properties?.labels },
    };
  }

  /** Every managed instance of the group, page by page. */
  async list(mig: Mig): Promise<ManagedInstance[]> {
    const out: ManagedInstance[] = [];
    let pageToken: string | undefined;
    do {
      const [items, , raw] = await this.compute.call(
        'poll',
        `instanceGroupManagers.listManagedInstances ${migLabel(mig)}`,
        () =>
          this.compute.migs.listManagedInstances(
            {
              project: mig.project,
              zone: mig.zone,
              instanceGroupManager: mig.name,
              maxResults: 500,
              ...(pageToken ? { pageToken } : {}),
            },
            { ...NO_GAX_RETRY, autoPaginate: false },
          ),
      );
      out.push(...(items ?? []));
      pageToken = raw?.nextPageToken ?? undefined;
    } while (pageToken);
    return out;
  }

  /** Waits until the operation is DONE (zoneOperations.wait returns early, "best effort"). */
  async done(op: Operation, zone: string, project: string, what: string): Promise<Operation> {
    let current = op;
    while (current.status !== 'DONE') {
      const name = current.name;
      if (!name) throw new Error(`${what}: GCE returned an operation without a name`);
      const [next] = await this.compute.call('poll', `zoneOperations.wait ${name} (${what})`, () =>
        this.compute.operations.wait({ project, zone, operation: name }, NO_GAX_RETRY),
      );
      current = next;
      if (current.status !== 'DONE') await this.clock.sleep(this.pollMs);
    }
    return current;
  }

  /**
   * Asks the group to create VMs with these names; resolves once GCE accepted the request (not
   * once the VMs exist). `uids` make the requestId: the same members ask with the same id, so a
   * retry after a lost answer or a crash is the same request to GCE. A replayed operation (older
   * than this call) whose VMs are not all in the group is an earlier, spent request for these
   * members (failed, or its VMs abandoned since): the next attempt number makes a fresh id.
   */
  async create(mig: Mig, names: string[], uids: string[], machineType: string): Promise<void> {
    const what = `createInstances ${names.join(', ')} in ${migLabel(mig)}`;
    for (let attempt = 0; attempt < 4; attempt++) {
      const startedAt = this.clock.now();
      const id = requestId(['createInstances', migKey(mig), ...uids], attempt);
      const [lro] = await this.compute.call('write', what, () =>
        this.compute.migs.createInstances(
          {
            project: mig.project,
            zone: mig.zone,
            instanceGroupManager: mig.name,
            requestId: id,
            instanceGroupManagersCreateInstancesRequestResource: { instances: names.map((name) => ({ name })) },
          },
          NO_GAX_RETRY,
        ),
      );
      const op = await this.done(bare(lro), mig.zone, mig.project, what);
      const errors = op.error?.errors ?? [];
      const replayed = Date.parse(op.insertTime ?? '') < startedAt;
      if (!errors.length && !replayed) return;
      if (errors.length && classifyItems(errors) !== 'exists' && !replayed)
        throw itemsError(errors, what, { instanceType: machineType, zone: mig.zone });
      const present = new Set((await this.list(mig)).map((mi) => mi.name));
      if (names.every((n) => present.has(n))) return;
    }
    throw new Error(`${what}: GCE kept answering with spent operations; will try again`);
  }

  /**
   * Removes VMs (or VMs still being created) from the group; the group's target size shrinks with it.
   * A fresh requestId per call, kept for that call's own retries (a lost answer asks again as the same
   * request). Not one derived from the names, as create() has: a VM name comes from its Instance's UID,
   * so a VM made again under it (a launch retried in this group after a stockout) would meet a spent id,
   * which GCE answers within the hour with the old, finished operation while the VM stays. A second
   * delete of VMs already removed changes nothing (skipInstancesOnValidationError).
   */
  async delete(mig: Mig, names: string[]): Promise<void> {
    const what = `deleteInstances ${names.join(', ')} from ${migLabel(mig)}`;
    const id = randomUUID();
    const [lro] = await this.compute.call('write', what, () =>
      this.compute.migs.deleteInstances(
        {
          project: mig.project,
          zone: mig.zone,
          instanceGroupManager: mig.name,
          requestId: id,
          instanceGroupManagersDeleteInstancesRequestResource: {
            instances: names.map((n) => `zones/${mig.zone}/instances/${n}`),
            skipInstancesOnValidationError: true,
          },
        },
        NO_GAX_RETRY,
      ),
    );
    const op = await this.done(bare(lro), mig.zone, mig.project, what);
    const errors = op.error?.errors ?? [];
    if (!errors.length) return;
    if (classifyItems(errors) === 'not-found') throw new NotFoundError(`${what}: ${errors[0]?.message ?? ''}`);
    throw itemsError(errors, what);
  }

  /** Sets labels on a VM (GCE refuses a stale fingerprint: read, merge, write). */
  async label(
    mig: Mig,
    name: string,
    labels: Record<string, string>,
  ): Promise<protos.google.cloud.compute.v1.IInstance> {
    const what = `instances.setLabels ${mig.zone}/${name}`;
    for (let attempt = 0; ; attempt++) {
      const vm = await this.vm(mig.project, mig.zone, name);
      const merged = { ...vm.labels, ...labels };
      if (Object.entries(labels).every(([k, v]) => vm.labels?.[k] === v)) return vm;
      try {
        const [lro] = await this.compute.call('write', what, () =>
          this.compute.instances.setLabels(
            {
              project: mig.project,
              zone: mig.zone,
              instance: name,
              requestId: requestId(['setLabels', mig.zone, name, vm.labelFingerprint ?? '']),
              instancesSetLabelsRequestResource: { labels: merged, labelFingerprint: vm.labelFingerprint },
            },
            NO_GAX_RETRY,
          ),
        );
        const op = await this.done(bare(lro), mig.zone, mig.project, what);
        if (op.error?.errors?.length) throw itemsError(op.error.errors, what);
        return { ...vm, labels: merged };
      } catch (e) {
        // 412: someone else changed the labels since our read; read again.
        const status = (e as { httpStatusCode?: number }).httpStatusCode;
        if (attempt < 3 && (status === 412 || (e instanceof Error && /fingerprint/i.test(e.message)))) continue;
        throw e;
      }
    }
  }

  /** instances.get; NotFoundError when there is no such VM. */
  async vm(project: string, zone: string, name: string): Promise<protos.google.cloud.compute.v1.IInstance> {
    const [vm] = await this.compute.call('read', `instances.get ${zone}/${name}`, () =>
      this.compute.instances.get({ project, zone, instance: name }, NO_GAX_RETRY),
    );
    return vm;
  }
}
