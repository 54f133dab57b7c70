// Writes to Instance objects. Every write is safe to repeat: create tolerates AlreadyExists,
// status is a merge patch, and finalizer removal is guarded by a JSON Patch test.
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { API_VERSION, FINALIZER, GROUP, NODE_CLASS_LABEL, VERSION, WARM_LABEL } from '../api/names.ts';
import type { Instance, InstanceStatus } from '../api/types.ts';
import { ignoreNotFound, isAlreadyExists } from './errors.ts';
import { inPlacementLane } from './lanes.ts';
import { pointer } from './patch.ts';
import { send, sendJson } from './request.ts';

const plural = 'instances';

/** A status merge patch: a null field is removed. */
export type StatusPatch = Record<string, unknown>;

export interface InstanceWrites {
  /** `warm`: created for the class's warm pool (labelled WARM_LABEL). `zones`: the only zones it may launch in. */
  create(
    name: string,
    cls: string,
    opts?: { warm?: boolean; zones?: readonly string[]; isolation?: 'Pod' | 'Class' },
  ): Promise<void>;
  /** Resolves to the Instance's resourceVersion after the write, when the writer knows it. */
  patchStatus(name: string, status: StatusPatch): Promise<string | void>;
  /**
   * Writes the whole status only if the Instance is still at the version read (fields naming the
   * cloud instance). Resolves as patchStatus does.
   */
  replaceStatus(inst: Instance, status: InstanceStatus): Promise<string | void>;
  delete(name: string, resourceVersion?: string): Promise<void>;
  reserve(inst: Instance): Promise<void>;
  /** Takes a warm Instance out of the pool after a pod claimed it: removes WARM_LABEL (tested on its value). */
  takeWarm(inst: Instance): Promise<Instance>;
  removeFinalizer(inst: Instance): Promise<void>;
}

export interface InstanceLookup {
  /** The Instance as the API server has it now, or undefined when it does not exist. */
  read(name: string): Promise<Instance | undefined>;
}

export class InstanceReader implements InstanceLookup {
  private readonly api: CustomObjectsApi;
  constructor(kc: KubeConfig) {
    this.api = kc.makeApiClient(CustomObjectsApi);
  }

  async read(name: string): Promise<Instance | undefined> {
    return (await ignoreNotFound(this.api.getClusterCustomObject({ group: GROUP, version: VERSION, plural, name }))) as
      Instance | undefined;
  }
}

/** The resourceVersion of a write's answer (the object as written), if it has one. */
const versionOf = (answer: unknown): string | undefined =>
  (answer as Partial<Instance> | undefined)?.metadata?.resourceVersion;

const path = (name: string, sub = '') => `/apis/${GROUP}/${VERSION}/${plural}/${encodeURIComponent(name)}${sub}`;

/** Every write a plain JSON request (request.ts): a burst writes each Instance three or four times. */
export class InstanceWriter implements InstanceWrites {
  private readonly kc: KubeConfig;
  constructor(kc: KubeConfig) {
    this.kc = kc;
  }

  /** Records the intent before any cloud call; the finalizer is there from the first moment. */
  async create(
    name: string,
    cls: string,
    opts: { warm?: boolean; zones?: readonly string[]; isolation?: 'Pod' | 'Class' } = {},
  ): Promise<void> {
    const labels: Record<string, string> = { [NODE_CLASS_LABEL]: cls };
    if (opts.warm) labels[WARM_LABEL] = 'true';
    const body: Instance = {
      apiVersion: API_VERSION,
      kind: 'Instance',
      metadata: { name, labels, finalizers: [FINALIZER] },
      spec: {
        class: cls,
        ...(opts.zones ? { zones: [...opts.zones] } : {}),
        ...(opts.isolation ? { isolation: opts.isolation } : {}),
      },
    };
    try {
      await send(this.kc, { method: 'POST', path: `/apis/${GROUP}/${VERSION}/${plural}`, body });
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
    }
  }

  async patchStatus(name: string, status: StatusPatch): Promise<string | void> {
    const written = await sendJson(this.kc, {
      method: 'PATCH',
      path: path(name, '/status'),
      body: { status },
      patch: 'merge',
    });
    return versionOf(written);
  }

  async replaceStatus(inst: Instance, status: InstanceStatus): Promise<string | void> {
    const written = await sendJson(this.kc, {
      method: 'PATCH',
      path: path(inst.metadata.name!, '/status'),
      body: [
        { op: 'test', path: '/metadata/resourceVersion', value: inst.metadata.resourceVersion },
        // `add` replaces an existing member (RFC 6902), and creates /status on a fresh Instance.
        { op: 'add', path: '/status', value: status },
      ],
    });
    return versionOf(written);
  }

  /**
   * Deletes (and so terminates) an Instance. With `resourceVersion`, only the version the decision
   * was made on: if anyone changed the Instance since (a pod reserved it), the API server answers
   * 409 and nothing is deleted.
   */
  async delete(name: string, resourceVersion?: string): Promise<void> {
    await ignoreNotFound(
      send(this.kc, {
        method: 'DELETE',
        path: path(name),
        ...(resourceVersion ? { body: { preconditions: { resourceVersion } } } : {}),
      }),
    );
  }

  /**
   * Takes an idle Instance for a pod: clears status.idleSince, guarded by the resourceVersion the
   * plan saw. Its new resourceVersion makes any idle-teardown decision made on the old one fail.
   */
  async reserve(inst: Instance): Promise<void> {
    // A waiting pod's placement hangs on it: in the placement lane of the rate limit (lanes.ts).
    await inPlacementLane(() =>
      send(this.kc, {
        method: 'PATCH',
        path: path(inst.metadata.name!, '/status'),
        body: [
          { op: 'test', path: '/metadata/resourceVersion', value: inst.metadata.resourceVersion },
          { op: 'remove', path: '/status/idleSince' },
        ],
      }),
    );
  }

  /**
   * Takes a warm Instance out of the pool once a pod has claimed it: removes WARM_LABEL, tested on
   * the label itself (not the resourceVersion, which status writes move all the time). The change of
   * resourceVersion makes the pool's removal, preconditioned on the version it judged, fail; a
   * removal that landed first shows as the answer's deletionTimestamp.
   */
  async takeWarm(inst: Instance): Promise<Instance> {
    const label = pointer('metadata', 'labels', WARM_LABEL);
    // A waiting pod's placement hangs on it: in the placement lane of the rate limit (lanes.ts).
    // The Instance as taken: whether the pool's removal landed first (deletionTimestamp) is in it.
    return inPlacementLane(() =>
      sendJson<Instance>(this.kc, {
        method: 'PATCH',
        path: path(inst.metadata.name!),
        body: [
          { op: 'test', path: label, value: 'true' },
          { op: 'remove', path: label },
        ],
      }),
    );
  }

  async removeFinalizer(inst: Instance): Promise<void> {
    const finalizers = inst.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER)) return;
    await ignoreNotFound(
      send(this.kc, {
        method: 'PATCH',
        path: path(inst.metadata.name!),
        body: [
          // The Instance read, not one created since under its name: that one's finalizer is what
          // makes its deletion drain and terminate (a 422 here; the next reconcile reads the new one).
          ...(inst.metadata.uid ? [{ op: 'test', path: '/metadata/uid', value: inst.metadata.uid }] : []),
          { op: 'test', path: '/metadata/finalizers', value: finalizers },
          { op: 'replace', path: '/metadata/finalizers', value: finalizers.filter((f) => f !== FINALIZER) },
        ],
      }),
    );
  }
}
