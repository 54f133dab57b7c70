// A cloud provider for unit tests of the controllers, driven by plain fields (after Karpenter's
// cloudprovider/fake): set the next error a call throws, read the calls it received. Idempotent on
// the Instance UID like every real provider.
import type { InstanceClass } from '../../../src/api/types.ts';
import { NotFoundError, NotOwnedError } from '../../../providers/errors.ts';
import type { CloudInstance, CloudProvider, LaunchRequest, Resources } from '../../../providers/types.ts';

export class FakeCloudProvider implements CloudProvider {
  readonly name: string;
  /** Thrown by the next create(), then cleared. */
  nextCreateError: Error | undefined;
  /** Thrown by the next delete(), then cleared. */
  nextDeleteError: Error | undefined;
  /** Thrown by the next list(), then cleared. */
  nextListError: Error | undefined;
  /** What validate() answers for every class. */
  validationProblems: string[] = [];
  /** Allocatable per instance type; absent types have unknown capacity. */
  capacities = new Map<string, Resources>();
  /** Set to give the fake a filtered lookup; unset, callers fall back to list(). */
  findByInstance?: (instance: string) => Promise<CloudInstance[]>;
  /** What stalled() answers for an instance the cloud accepted but keeps failing to make (by providerID). */
  readonly stalls = new Map<string, Error>();
  /** Thrown by the next stalled(), then cleared. */
  nextStalledError: Error | undefined;
  /** Live instances by providerID. */
  readonly instances = new Map<string, CloudInstance>();
  /** Instances that exist under another cluster's tag: get() and delete() refuse them, list() leaves them out. */
  readonly foreign = new Set<string>();

  readonly createCalls: LaunchRequest[] = [];
  readonly deleteCalls: string[] = [];
  readonly getCalls: string[] = [];
  readonly stalledCalls: string[] = [];
  listCalls = 0;
  readonly validated: InstanceClass[] = [];

  constructor(name = 'simulated') {
    this.name = name;
  }

  async create(req: LaunchRequest): Promise<CloudInstance> {
    this.createCalls.push(req);
    const err = this.nextCreateError;
    this.nextCreateError = undefined;
    if (err) throw err;
    const providerID = `fake:///zone-a/${req.instance.uid}`;
    const existing = this.instances.get(providerID);
    if (existing) return existing;
    const created: CloudInstance = {
      providerID,
      instanceType: req.class.spec.instanceTypes[0]!,
      zone: 'zone-a',
      state: 'running',
      tags: { ...req.tags },
      launchedAt: new Date('2024-01-01T00:00:00Z'),
    };
    this.instances.set(providerID, created);
    return created;
  }

  async delete(providerID: string): Promise<void> {
    this.deleteCalls.push(providerID);
    const err = this.nextDeleteError;
    this.nextDeleteError = undefined;
    if (err) throw err;
    if (this.foreign.has(providerID)) throw new NotOwnedError(`fake instance ${providerID} is another cluster's`);
    if (!this.instances.delete(providerID)) throw new NotFoundError(`fake instance ${providerID} does not exist`);
  }

  async get(providerID: string): Promise<CloudInstance> {
    this.getCalls.push(providerID);
    if (this.foreign.has(providerID)) throw new NotOwnedError(`fake instance ${providerID} is another cluster's`);
    const found = this.instances.get(providerID);
    if (!found) throw new NotFoundError(`fake instance ${providerID} does not exist`);
    return found;
  }

  async stalled(providerID: string): Promise<Error | undefined> {
    this.stalledCalls.push(providerID);
    const err = this.nextStalledError;
    this.nextStalledError = undefined;
    if (err) throw err;
    return this.stalls.get(providerID);
  }

  async list(): Promise<CloudInstance[]> {
    this.listCalls++;
    const err = this.nextListError;
    this.nextListError = undefined;
    if (err) throw err;
    return [...this.instances.values()];
  }

  capacity(instanceType: string): Resources | undefined {
    return this.capacities.get(instanceType);
  }

  validate(cls: InstanceClass): string[] {
    this.validated.push(cls);
    return this.validationProblems;
  }
}
