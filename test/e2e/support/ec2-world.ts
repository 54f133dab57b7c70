// One test file's EC2 world for the fault tests: moto behind the fault proxy, a VPC with a subnet in
// two zones, the real controller with --providers=aws, and the test playing each instance's kubelet
// (it registers the Node the instance's user data describes, kwok then keeps it Ready), or killing
// it (the Node turns NotReady/Unknown as the node-lifecycle controller marks a silent kubelet).
import {
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  EC2Client,
  type Instance as Ec2Instance,
} from '@aws-sdk/client-ec2';
import { expect, inject } from 'vitest';
import type { InstanceClassSpec } from '../../../src/api/types.ts';
import { mergePatch } from '../../../src/kube/patch.ts';
import { registration } from '../../../providers/aws/bootstrap.ts';
import { allocatable } from '../../../providers/aws/capacity.ts';
import { startEc2FaultProxy, type Ec2FaultProxy } from '../../testbed/ec2-fault-proxy.ts';
import { eventually, suffix, type Clients } from './cluster.ts';
import {
  createClass,
  deleteClasses,
  getClass,
  removeWebhookConfiguration,
  startIpp,
  type Ipp,
  type IppOptions,
} from './ipp.ts';

const region = 'us-east-1';
const eks = {
  clusterName: `eks-${suffix()}`,
  endpoint: 'https://ABCDEF.gr7.us-east-1.eks.amazonaws.com',
  ca: Buffer.from('-----BEGIN CERTIFICATE-----\nipp-e2e\n-----END CERTIFICATE-----\n').toString('base64'),
  serviceCidr: '10.100.0.0/16',
};
const credentials: NodeJS.ProcessEnv = {
  AWS_ACCESS_KEY_ID: 'AKIAIPPE2EFAULTS',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_SESSION_TOKEN: undefined,
  AWS_PROFILE: undefined,
  AWS_CONFIG_FILE: '/nonexistent/ipp-e2e',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/ipp-e2e',
  AWS_EC2_METADATA_DISABLED: 'true',
};

export interface Ec2World {
  proxy: Ec2FaultProxy;
  /** moto directly, as the cloud's console would be: behind ipp's back. */
  moto: EC2Client;
  subnets: { id: string; zone: string }[];
  /** Node names the world registered (to delete after the file). */
  nodes: string[];
  /** Starts a controller of `cluster` on this world (more than one for replicas). */
  start(o: Partial<IppOptions> & Pick<IppOptions, 'clients' | 'clusterName' | 'namespace'>): Promise<Ipp>;
  /** An aws class on the world's subnets, once the controller found it valid. */
  awsClass(c: Clients, name: string, spec?: Partial<InstanceClassSpec>): Promise<void>;
  /** Live (pending/running) instances with these tags. */
  live(tags: Record<string, string>): Promise<Ec2Instance[]>;
  /** Plays the instance's kubelet: registers the Node its user data describes; returns its name. */
  join(c: Clients, i: Ec2Instance): Promise<string>;
  /** The kubelet of `node` dies: kwok lets go of it and its Ready condition turns Unknown. */
  kill(c: Clients, node: string): Promise<void>;
  close(): Promise<void>;
}

export async function ec2World(): Promise<Ec2World> {
  const proxy = await startEc2FaultProxy({ target: inject('motoEndpoint') });
  const moto = new EC2Client({
    region,
    endpoint: inject('motoEndpoint'),
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  const vpc = await moto.send(new CreateVpcCommand({ CidrBlock: '10.43.0.0/16' }));
  const subnets: { id: string; zone: string }[] = [];
  for (const [k, zone] of ['us-east-1a', 'us-east-1b'].entries()) {
    const s = await moto.send(
      new CreateSubnetCommand({ VpcId: vpc.Vpc!.VpcId!, CidrBlock: `10.43.${k + 1}.0/24`, AvailabilityZone: zone }),
    );
    subnets.push({ id: s.Subnet!.SubnetId!, zone });
  }
  const nodes: string[] = [];
  return {
    proxy,
    moto,
    subnets,
    nodes,
    start: (o) =>
      startIpp({
        providers: ['aws'],
        env: credentials,
        ...o,
        extraArgs: [
          `--aws-region=${region}`,
          `--aws-endpoint=${proxy.endpoint}`,
          `--eks-cluster-name=${eks.clusterName}`,
          `--eks-endpoint=${eks.endpoint}`,
          `--eks-certificate-authority=${eks.ca}`,
          `--eks-service-cidr=${eks.serviceCidr}`,
          ...(o.extraArgs ?? []),
        ],
      }),
    async awsClass(c, name, spec = {}) {
      await createClass(c, name, {
        instanceTypes: ['m5.metal'],
        idleTimeout: '10m',
        aws: { ami: { id: 'ami-12c6146b' }, subnets: { ids: subnets.map((s) => s.id) } },
        ...spec,
      });
      await eventually(`InstanceClass ${name} Ready`, async () => {
        expect((await getClass(c, name)).status?.conditions?.find((x) => x.type === 'Ready')?.status).toBe('True');
      });
    },
    async live(tags) {
      const r = await moto.send(
        new DescribeInstancesCommand({
          Filters: [
            ...Object.entries(tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] })),
            { Name: 'instance-state-name', Values: ['pending', 'running'] },
          ],
        }),
      );
      return (r.Reservations ?? []).flatMap((x) => x.Instances ?? []);
    },
    async join(c, i) {
      const ud = await moto.send(
        new DescribeInstanceAttributeCommand({ InstanceId: i.InstanceId!, Attribute: 'userData' }),
      );
      const reg = registration(Buffer.from(ud.UserData?.Value ?? '', 'base64').toString('utf8'), i.AmiLaunchIndex ?? 0);
      const name = i.PrivateDnsName!;
      const zone = i.Placement!.AvailabilityZone!;
      nodes.push(name);
      await c.core.createNode({
        body: {
          metadata: {
            name,
            labels: {
              ...reg.node.labels,
              'kubernetes.io/hostname': name,
              'kubernetes.io/os': 'linux',
              'node.kubernetes.io/instance-type': i.InstanceType!,
              'topology.kubernetes.io/zone': zone,
            },
            annotations: { 'kwok.x-k8s.io/node': 'fake' },
          },
          spec: { providerID: `aws:///${zone}/${i.InstanceId}`, taints: reg.node.taints },
        },
      });
      const a = allocatable(i.InstanceType!)!;
      const resources = { cpu: `${a.cpu}m`, memory: `${a.memory}`, pods: `${a.pods}` };
      await c.core.patchNodeStatus(
        { name, body: { status: { capacity: resources, allocatable: resources } } },
        mergePatch,
      );
      return name;
    },
    async kill(c, node) {
      // kwok manages only nodes annotated fake: taking that away is its kubelet going silent.
      await c.core.patchNode(
        { name: node, body: { metadata: { annotations: { 'kwok.x-k8s.io/node': 'dead' } } } },
        mergePatch,
      );
      // What the node-lifecycle controller writes once the kubelet has missed its grace period.
      const n = await c.core.readNode({ name: node });
      const now = new Date();
      const conditions = (n.status?.conditions ?? []).map((x) =>
        x.type === 'Ready'
          ? {
              ...x,
              status: 'Unknown',
              reason: 'NodeStatusUnknown',
              message: 'Kubelet stopped posting node status.',
              lastTransitionTime: now,
            }
          : x,
      );
      await c.core.replaceNodeStatus({ name: node, body: { ...n, status: { ...n.status, conditions } } });
    },
    async close() {
      await proxy.close();
    },
  };
}

/**
 * What a file on an EC2 world leaves behind, removed once its controllers have stopped: the world
 * (moto's proxy), the webhook configuration of `cluster`, the Nodes the world registered, the
 * file's namespaces and classes. Each step tolerates what is already gone.
 */
export async function closeEc2World(
  c: Clients,
  world: Ec2World | undefined,
  o: { cluster: string; namespaces: (string | undefined)[]; classes: string[] },
): Promise<void> {
  await world?.close();
  await removeWebhookConfiguration(c, o.cluster);
  for (const name of world?.nodes ?? []) await c.core.deleteNode({ name }).catch(() => {});
  for (const name of o.namespaces) if (name) await c.core.deleteNamespace({ name }).catch(() => {});
  await deleteClasses(c, o.classes);
}
