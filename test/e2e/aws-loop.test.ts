// The AWS loop end to end on the testbed: the real controller process (--providers=aws) against
// moto's EC2 Query API behind our fault proxy, the real apiserver/scheduler/kwok, and the test
// playing the kubelet: it reads the user data the controller generated and registers the Node that
// user data describes (name = the instance's private DNS name, as on EKS; providerID; labels; taint).
// The controller gets its AWS credentials from the SDK's default chain only (environment here).
import { pinnedNodeOf } from '../../src/api/pods.ts';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type Instance as Ec2Instance,
} from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { EventsV1Api } from '@kubernetes/client-node';
import { GATE, NODE_CLASS_LABEL, NODE_INSTANCE_LABEL } from '../../src/api/names.ts';
import type { Instance, InstanceClassSpec } from '../../src/api/types.ts';
import { mergePatch } from '../../src/kube/patch.ts';
import { registration } from '../../providers/aws/bootstrap.ts';
import { allocatable } from '../../providers/aws/capacity.ts';
import { startEc2FaultProxy, type Ec2FaultProxy, type ProxiedRequest } from '../testbed/ec2-fault-proxy.ts';
import { clients, eventually, namespace, suffix, type Clients } from './support/cluster.ts';
import {
  createClass,
  deleteClasses,
  getClass,
  installCrds,
  listInstances,
  metric,
  removeWebhookConfiguration,
  startIpp,
  type Ipp,
} from './support/ipp.ts';

const region = 'us-east-1';
const AMI = 'ami-12c6146b';
/** What the controller's environment hands the SDK's default chain; nothing in the code knows it. */
const ENV_ACCESS_KEY = 'AKIAIPPE2EFROMENV';
const eks = {
  clusterName: `eks-${suffix()}`,
  endpoint: 'https://ABCDEF.gr7.us-east-1.eks.amazonaws.com',
  ca: Buffer.from('-----BEGIN CERTIFICATE-----\nipp-e2e\n-----END CERTIFICATE-----\n').toString('base64'),
  serviceCidr: '10.100.0.0/16',
};

const tagsOf = (i: Ec2Instance) => Object.fromEntries((i.Tags ?? []).map((t) => [t.Key, t.Value]));
const providerIdOf = (i: Ec2Instance) => `aws:///${i.Placement!.AvailabilityZone}/${i.InstanceId}`;
/** The values of a Query API request's indexed parameters, e.g. InstanceId.1, InstanceId.2 … */
const indexed = (r: ProxiedRequest, prefix: string) =>
  [...r.params.entries()].filter(([k]) => k.startsWith(`${prefix}.`)).map(([, v]) => v);
/** Tags of a RunInstances request: TagSpecification.1.Tag.N.Key/Value of the instance's specification. */
function requestTags(r: ProxiedRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (let s = 1; r.params.has(`TagSpecification.${s}.ResourceType`); s++) {
    if (r.params.get(`TagSpecification.${s}.ResourceType`) !== 'instance') continue;
    for (let t = 1; r.params.has(`TagSpecification.${s}.Tag.${t}.Key`); t++)
      out[r.params.get(`TagSpecification.${s}.Tag.${t}.Key`)!] =
        r.params.get(`TagSpecification.${s}.Tag.${t}.Value`) ?? '';
  }
  return out;
}

/** Nothing the SDK's default chain could find on this machine besides what a test hands it. */
const noAmbientCredentials: NodeJS.ProcessEnv = {
  AWS_ACCESS_KEY_ID: undefined,
  AWS_SECRET_ACCESS_KEY: undefined,
  AWS_SESSION_TOKEN: undefined,
  AWS_PROFILE: undefined,
  AWS_ROLE_ARN: undefined,
  AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
  AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
  AWS_CONFIG_FILE: '/nonexistent/ipp-e2e',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/ipp-e2e',
  AWS_EC2_METADATA_DISABLED: 'true',
};
/** Static keys in the environment: the default chain's first source (moto accepts any key). */
const envCredentials: NodeJS.ProcessEnv = {
  ...noAmbientCredentials,
  AWS_ACCESS_KEY_ID: ENV_ACCESS_KEY,
  AWS_SECRET_ACCESS_KEY: 'testing',
};

describe('the AWS loop with the real controller, moto and the fault proxy', () => {
  let c: Clients;
  let ns: string;
  /** The controller's own namespace, which admission never touches: not the workload's. */
  let system: string;
  let ipp: Ipp;
  let proxy: Ec2FaultProxy;
  let moto: EC2Client;
  let subnets: { id: string; zone: string }[];
  const cluster = `awsloop-${suffix()}`;
  const classes: string[] = [];
  const nodes: string[] = [];

  const start = (env: NodeJS.ProcessEnv = envCredentials) =>
    startIpp({
      clients: c,
      clusterName: cluster,
      namespace: system,
      providers: ['aws'],
      extraArgs: [
        `--aws-region=${region}`,
        `--aws-endpoint=${proxy.endpoint}`,
        `--eks-cluster-name=${eks.clusterName}`,
        `--eks-endpoint=${eks.endpoint}`,
        `--eks-certificate-authority=${eks.ca}`,
        `--eks-service-cidr=${eks.serviceCidr}`,
        '--gc-interval=2s',
        '--gc-grace-period=5s',
      ],
      env,
    });

  const awsClass = async (prefix: string, instanceTypes: string[], userData?: string): Promise<string> => {
    const name = `${prefix}-${suffix()}`;
    const spec: InstanceClassSpec = {
      instanceTypes,
      idleTimeout: '3s',
      aws: {
        ami: { id: AMI },
        subnets: { ids: subnets.map((s) => s.id) },
        tags: { team: 'mail' },
        ...(userData !== undefined ? { userData } : {}),
      },
    };
    await createClass(c, name, spec);
    classes.push(name);
    // The controller has seen the class and its aws provider found spec.aws valid.
    await eventually(`InstanceClass ${name} Ready`, async () => {
      expect((await getClass(c, name)).status?.conditions?.find((x) => x.type === 'Ready')).toMatchObject({
        status: 'True',
        reason: 'Valid',
      });
    });
    return name;
  };

  const deploy = (name: string, cls: string, replicas = 1) =>
    c.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name },
        spec: {
          replicas,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name, 'ipp-class': cls } },
            spec: { containers: [{ name: 'postfix', image: 'postfix' }] },
          },
        },
      },
    });
  const scale = (name: string, replicas: number) =>
    c.apps.patchNamespacedDeploymentScale({
      name,
      namespace: ns,
      body: [{ op: 'replace', path: '/spec/replicas', value: replicas }],
    });

  /** Every instance moto holds with these tags (terminated ones too unless `live`). */
  const inMoto = async (tags: Record<string, string>, live = true): Promise<Ec2Instance[]> => {
    const r = await moto.send(
      new DescribeInstancesCommand({
        Filters: [
          ...Object.entries(tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] })),
          ...(live ? [{ Name: 'instance-state-name', Values: ['pending', 'running'] }] : []),
        ],
      }),
    );
    return (r.Reservations ?? []).flatMap((x) => x.Instances ?? []);
  };
  const byId = async (id: string): Promise<Ec2Instance> => {
    const r = await moto.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    return r.Reservations![0]!.Instances![0]!;
  };

  /** The one Instance of `cls`, once the controller has written it. */
  const theInstance = (cls: string, check: (i: Instance) => void = () => {}) =>
    eventually(`the Instance of class ${cls}`, async () => {
      const all = await listInstances(c, cls);
      expect(all).toHaveLength(1);
      check(all[0]!);
      return all[0]!;
    });

  /** The one live EC2 instance launched for the Instance `name`. */
  const launchedFor = (name: string) =>
    eventually(`an EC2 instance for Instance ${name}`, async () => {
      const found = await inMoto({ 'ipp.dev/cluster': cluster, 'ipp.dev/instance': name });
      expect(found).toHaveLength(1);
      return found[0]!;
    });

  /**
   * Plays the kubelet of an EKS AL2023 node: boots from the user data the controller generated and
   * registers the Node it describes, named after the private DNS name, with the cloud's providerID.
   */
  const joinNode = async (i: Ec2Instance): Promise<string> => {
    const ud = await moto.send(
      new DescribeInstanceAttributeCommand({ InstanceId: i.InstanceId!, Attribute: 'userData' }),
    );
    const reg = registration(Buffer.from(ud.UserData?.Value ?? '', 'base64').toString('utf8'), i.AmiLaunchIndex ?? 0);
    // nodeadm joins the cluster the controller was told about.
    expect(reg.cluster).toEqual({
      name: eks.clusterName,
      apiServerEndpoint: eks.endpoint,
      certificateAuthority: eks.ca,
      cidr: eks.serviceCidr,
    });
    const name = i.PrivateDnsName!;
    expect(name).toMatch(/^ip-10-42-\d+-\d+\.ec2\.internal$/);
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
            'kubernetes.io/arch': 'amd64',
            'node.kubernetes.io/instance-type': i.InstanceType!,
            'topology.kubernetes.io/zone': zone,
            'topology.kubernetes.io/region': region,
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
  };

  /** The deployment's one pod, Running on `node`, pinned to `instance` by the controller. */
  const runningOn = (app: string, node: string, instance: string) =>
    eventually(
      `pod of ${app} Running on ${node}`,
      async () => {
        const pods = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: `app=${app}` })).items;
        expect(pods).toHaveLength(1);
        const p = pods[0]!;
        expect(p.status?.phase, JSON.stringify(p.status?.conditions)).toBe('Running');
        expect(p.spec!.nodeName).toBe(node);
        expect(pinnedNodeOf(p)).toBe(node);
        expect(p.metadata!.annotations!['ipp.dev/instance']).toBe(instance);
        expect(p.spec!.schedulingGates ?? []).not.toContainEqual({ name: GATE });
        return p;
      },
      90_000,
    );

  /** Scale to zero; idle teardown deletes the Node and terminates the instance, then the Instance goes. */
  const tornDown = async (app: string, cls: string, node: string, instanceId: string) => {
    await scale(app, 0);
    await eventually(
      `class ${cls} torn down`,
      async () => {
        expect(await listInstances(c, cls)).toEqual([]);
        await expect(c.core.readNode({ name: node })).rejects.toThrow();
        expect((await byId(instanceId)).State?.Name).toBe('terminated');
      },
      90_000,
    );
  };

  beforeAll(async () => {
    c = clients();
    await installCrds(c);
    ns = await namespace(c, 'awsloop');
    system = await namespace(c, 'ipp-system');
    proxy = await startEc2FaultProxy({ target: inject('motoEndpoint') });
    moto = new EC2Client({
      region,
      endpoint: inject('motoEndpoint'),
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    const vpc = await moto.send(new CreateVpcCommand({ CidrBlock: '10.42.0.0/16' }));
    subnets = [];
    for (const [k, zone] of ['us-east-1a', 'us-east-1b'].entries()) {
      const s = await moto.send(
        new CreateSubnetCommand({ VpcId: vpc.Vpc!.VpcId!, CidrBlock: `10.42.${k + 1}.0/24`, AvailabilityZone: zone }),
      );
      subnets.push({ id: s.Subnet!.SubnetId!, zone });
    }
    ipp = await start();
  });

  /** Whatever a test left (also after a failure): no workload, no Instance, no live instance of its classes. */
  const cleanUp = async () => {
    await c.apps.deleteCollectionNamespacedDeployment({ namespace: ns });
    for (const i of (await listInstances(c)).filter((x) => classes.includes(x.spec.class))) {
      await c.custom
        .deleteClusterCustomObject({
          group: 'ipp.dev',
          version: 'v1alpha1',
          plural: 'instances',
          name: i.metadata.name!,
        })
        .catch(() => {});
    }
    await eventually(
      'every Instance of this file torn down',
      async () => {
        expect(
          (await listInstances(c)).filter((i) => classes.includes(i.spec.class)).map((i) => i.metadata.name),
        ).toEqual([]);
        const live = (
          await Promise.all(classes.map((cls) => inMoto({ 'ipp.dev/cluster': cluster, 'ipp.dev/class': cls })))
        ).flat();
        expect(live.map((i) => i.InstanceId)).toEqual([]);
      },
      60_000,
    );
  };

  afterEach(async () => {
    proxy.clear();
    if (ipp.process.exitCode === null && ipp.process.signalCode === null) await cleanUp();
  });

  afterAll(async () => {
    await ipp?.stop();
    await proxy?.close();
    await removeWebhookConfiguration(c, cluster);
    for (const name of nodes) await c.core.deleteNode({ name }).catch(() => {});
    await c.core.deleteNamespace({ name: ns }).catch(() => {});
    await c.core.deleteNamespace({ name: system }).catch(() => {});
    await deleteClasses(c, classes);
  });

  it('pod → Instance → RunInstances (tags, ClientToken) → the node its user data describes → pod pinned and Running → scale to zero → TerminateInstances', async () => {
    const cls = await awsClass('metal', ['i3.metal', 'm5.metal']);
    // moto's catalog has no i3.metal (it answers InvalidInstanceType.NotFound); EC2 answers a metal
    // type it has no room for with InsufficientInstanceCapacity, which is what the proxy says here.
    proxy.inject({ action: 'RunInstances', when: { InstanceType: 'i3.metal' }, code: 'InsufficientInstanceCapacity' });
    await deploy('relay', cls);

    const inst = await theInstance(cls);
    const name = inst.metadata.name!;
    const i = await launchedFor(name);
    expect(i.InstanceType).toBe('m5.metal');
    expect(i.SubnetId).toBe(subnets[0]!.id);
    expect(i.ImageId).toBe(AMI);
    expect(tagsOf(i)).toMatchObject({
      'ipp.dev/cluster': cluster,
      'ipp.dev/class': cls,
      'ipp.dev/instance': name,
      [`kubernetes.io/cluster/${eks.clusterName}`]: 'owned',
      Name: name,
      team: 'mail',
    });
    // The call that launched it: one RunInstances reached moto, with a ClientToken and the tags at launch.
    const run = proxy.requests.filter(
      (r) => r.action === 'RunInstances' && requestTags(r)['ipp.dev/instance'] === name && r.outcome !== 'injected',
    );
    expect(run.map((r) => [r.params.get('InstanceType'), r.outcome])).toEqual([['m5.metal', 'forwarded']]);
    expect(run[0]!.params.get('ClientToken')).toMatch(/^\S{8,64}$/);
    expect(i.ClientToken).toBe(run[0]!.params.get('ClientToken'));
    expect(requestTags(run[0]!)).toMatchObject({
      'ipp.dev/cluster': cluster,
      'ipp.dev/class': cls,
      'ipp.dev/instance': name,
      Name: name,
    });
    // Credentials came from the environment through the SDK's default chain, on every call.
    expect(new Set(proxy.requests.map((r) => r.accessKeyId))).toEqual(new Set([ENV_ACCESS_KEY]));

    await theInstance(cls, (x) => {
      expect(x.status?.providerID).toBe(providerIdOf(i));
      expect(x.status).toMatchObject({
        phase: 'Launched',
        provider: 'aws',
        instanceType: 'm5.metal',
        zone: subnets[0]!.zone,
      });
    });
    // Nothing can run before the node joins: the pod is still held by the gate.
    const [waiting] = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'app=relay' })).items;
    expect(waiting!.spec!.schedulingGates).toContainEqual({ name: GATE });

    const node = await joinNode(i);
    const n = await c.core.readNode({ name: node });
    expect(n.metadata!.labels).toMatchObject({ [NODE_CLASS_LABEL]: cls, [NODE_INSTANCE_LABEL]: name });
    expect(n.spec!.taints).toContainEqual({ key: NODE_CLASS_LABEL, value: cls, effect: 'NoSchedule' });
    await runningOn('relay', node, name);
    await theInstance(cls, (x) => expect(x.status).toMatchObject({ phase: 'Ready', nodeName: node }));

    const terminateBefore = proxy.requests.filter((r) => r.action === 'TerminateInstances').length;
    await tornDown('relay', cls, node, i.InstanceId!);
    const terminates = proxy.requests.filter((r) => r.action === 'TerminateInstances').slice(terminateBefore);
    expect(terminates.flatMap((r) => indexed(r, 'InstanceId'))).toContain(i.InstanceId);
  });

  it("a class's own user data that drops ipp's taints: its node is cordoned and reported, and given no pod", async () => {
    // nodeadm's NodeConfig with ipp's labels and no {{ipp:register-with-taints}}: the class-taints
    // policy only warns about it, so the node registers open to any pod that tolerates nothing.
    const userData = [
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="B"',
      '',
      '--B',
      'Content-Type: application/node.eks.aws',
      '',
      'apiVersion: node.eks.aws/v1alpha1',
      'kind: NodeConfig',
      'spec:',
      '  cluster:',
      `    name: ${eks.clusterName}`,
      `    apiServerEndpoint: ${eks.endpoint}`,
      `    certificateAuthority: ${eks.ca}`,
      `    cidr: ${eks.serviceCidr}`,
      '  kubelet:',
      '    flags:',
      '      - "{{ipp:node-labels}}"',
      '',
      '--B--',
      '',
    ].join('\n');
    const cls = await awsClass('untainted', ['m5.large'], userData);
    await deploy('untainted', cls);
    const inst = await theInstance(cls);
    const name = inst.metadata.name!;
    const node = await joinNode(await launchedFor(name));
    const n = await c.core.readNode({ name: node });
    expect(n.metadata!.labels).toMatchObject({ [NODE_CLASS_LABEL]: cls, [NODE_INSTANCE_LABEL]: name });
    expect((n.spec!.taints ?? []).filter((t) => t.key === NODE_CLASS_LABEL)).toEqual([]);
    const notes = await eventually(
      'the node cordoned and NodeTaintsMissing on the Instance, Node and class',
      async () => {
        expect((await c.core.readNode({ name: node })).spec?.unschedulable).toBe(true);
        const all = await c.kc.makeApiClient(EventsV1Api).listEventForAllNamespaces();
        const about = { Node: node, Instance: name, InstanceClass: cls } as Record<string, string>;
        const mine = all.items.filter(
          (e) =>
            e.reason === 'NodeTaintsMissing' &&
            e.type === 'Warning' &&
            about[e.regarding?.kind ?? ''] === e.regarding?.name,
        );
        expect(new Set(mine.map((e) => e.regarding?.kind))).toEqual(new Set(['Node', 'Instance', 'InstanceClass']));
        return mine.map((e) => e.note);
      },
    );
    expect(notes[0]).toContain(`${NODE_CLASS_LABEL}=${cls}:NoSchedule`);
    // The pod waits, gated, and its Instance is never Ready on that node (placement refuses it too).
    await new Promise((r) => setTimeout(r, 3_000));
    const [waiting] = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'app=untainted' })).items;
    expect(waiting!.spec!.schedulingGates).toContainEqual({ name: GATE });
    expect(waiting!.spec!.nodeName).toBeUndefined();
    await theInstance(cls, (x) => expect(x.status?.phase).toBe('Launched'));
  });

  it('capacity error on the first instance type: launched as the second, and the next pod does not try the first again', async () => {
    const cls = await awsClass('capacity', ['c5.metal', 'm5.metal']);
    proxy.inject({
      action: 'RunInstances',
      when: { InstanceType: 'c5.metal' },
      code: 'InsufficientInstanceCapacity',
      message: 'We currently do not have sufficient c5.metal capacity in the Availability Zone you requested.',
    });
    await deploy('capacity', cls);

    const name = (await theInstance(cls)).metadata.name!;
    const i = await launchedFor(name);
    expect(i.InstanceType).toBe('m5.metal');
    await theInstance(cls, (x) =>
      expect(x.status).toMatchObject({ providerID: providerIdOf(i), instanceType: 'm5.metal' }),
    );
    const runsFor = (n: string) =>
      proxy.requests
        .filter((r) => r.action === 'RunInstances' && requestTags(r)['ipp.dev/instance'] === n)
        .map((r) => [r.params.get('InstanceType'), r.params.get('SubnetId'), r.outcome]);
    // c5.metal refused in both zones (subnets) of the class, then one m5.metal launch in the first.
    expect(runsFor(name)).toEqual([
      ['c5.metal', subnets[0]!.id, 'injected'],
      ['c5.metal', subnets[1]!.id, 'injected'],
      ['m5.metal', subnets[0]!.id, 'forwarded'],
    ]);

    const node = await joinNode(i);
    await runningOn('capacity', node, name);
    expect((await c.core.readNode({ name: node })).metadata!.labels!['node.kubernetes.io/instance-type']).toBe(
      'm5.metal',
    );

    // A second pod gets a second instance; c5.metal is remembered as without capacity and not asked for.
    await scale('capacity', 2);
    const second = await eventually('a second Instance launched', async () => {
      const all = (await listInstances(c, cls)).filter((x) => x.metadata.name !== name);
      expect(all).toHaveLength(1);
      expect(all[0]!.status?.providerID).toBeDefined();
      return all[0]!;
    });
    expect(second.status?.instanceType).toBe('m5.metal');
    expect(runsFor(second.metadata.name!)).toEqual([['m5.metal', subnets[0]!.id, 'forwarded']]);
    expect(await inMoto({ 'ipp.dev/cluster': cluster, 'ipp.dev/class': cls })).toHaveLength(2);
  });

  it('throttling: RunInstances is retried, and no duplicate instance is launched', async () => {
    const cls = await awsClass('throttle', ['m5.large']);
    proxy.inject({
      action: 'RunInstances',
      code: 'RequestLimitExceeded',
      message: 'Request limit exceeded.',
      times: 3,
    });
    await deploy('throttle', cls);

    const name = (await theInstance(cls)).metadata.name!;
    const inst = await theInstance(cls, (x) => expect(x.status?.providerID).toBeDefined());
    const runs = proxy.requests.filter(
      (r) => r.action === 'RunInstances' && requestTags(r)['ipp.dev/instance'] === name,
    );
    expect(runs.map((r) => r.outcome)).toEqual(['injected', 'injected', 'injected', 'forwarded']);
    // Every retry is the same call: same token, so even a throttle after launch could not duplicate it.
    expect(new Set(runs.map((r) => r.params.get('ClientToken'))).size).toBe(1);
    const live = await inMoto({ 'ipp.dev/cluster': cluster, 'ipp.dev/class': cls });
    expect(live.map(providerIdOf)).toEqual([inst.status!.providerID]);
  });

  it('controller SIGKILLed between RunInstances and the status write: after restart still exactly one instance', async () => {
    const cls = await awsClass('killed', ['m5.large']);
    // moto launches, but the answer is held until the controller is gone.
    proxy.inject({ action: 'RunInstances', holdMs: 120_000, times: 1 });
    const lostBefore = proxy.count('RunInstances', 'lost');
    await deploy('killed', cls);

    const name = (await theInstance(cls)).metadata.name!;
    const i = await launchedFor(name);
    await ipp.kill();
    await eventually('the held RunInstances answer lost with the process', async () => {
      expect(proxy.count('RunInstances', 'lost') - lostBefore).toBe(1);
    });
    // The intent record survived; the launch result never reached it.
    const before = await theInstance(cls);
    expect(before.metadata.name).toBe(name);
    expect(before.status?.providerID).toBeUndefined();

    const forwarded = proxy.count('RunInstances', 'forwarded');
    ipp = await start();
    await theInstance(cls, (x) => expect(x.status?.providerID).toBe(providerIdOf(i)));
    // Found by its tags, not launched again.
    expect(proxy.count('RunInstances', 'forwarded')).toBe(forwarded);
    expect((await inMoto({ 'ipp.dev/cluster': cluster, 'ipp.dev/class': cls })).map((x) => x.InstanceId)).toEqual([
      i.InstanceId,
    ]);

    const node = await joinNode(i);
    await runningOn('killed', node, name);
    expect((await inMoto({ 'ipp.dev/cluster': cluster, 'ipp.dev/class': cls })).map((x) => x.InstanceId)).toEqual([
      i.InstanceId,
    ]);
    await tornDown('killed', cls, node, i.InstanceId!);
  });

  it("garbage collection terminates a leaked instance of this cluster after the grace period and never touches another cluster's", async () => {
    const other = `other-${suffix()}`;
    const leakedName = `leaked-${suffix()}`;
    const launch = async (owner: string) =>
      (
        await moto.send(
          new RunInstancesCommand({
            ImageId: AMI,
            InstanceType: 'm5.large',
            MinCount: 1,
            MaxCount: 1,
            SubnetId: subnets[0]!.id,
            TagSpecifications: [
              {
                ResourceType: 'instance',
                Tags: [
                  { Key: 'ipp.dev/cluster', Value: owner },
                  { Key: 'ipp.dev/class', Value: 'gone' },
                  { Key: 'ipp.dev/instance', Value: leakedName },
                  { Key: 'ipp.dev/launch-group', Value: `/${leakedName}/` },
                  { Key: `kubernetes.io/cluster/${owner}`, Value: 'owned' },
                ],
              },
            ],
          }),
        )
      ).Instances![0]!.InstanceId!;
    const collectedBefore = (await metric(ipp, 'ipp_leaked_instances_collected_total', { provider: 'aws' })) ?? 0;
    const started = Date.now();
    const leaked = await launch(cluster);
    const foreign = await launch(other);

    const gone = await eventually(
      'the leaked instance terminated',
      async () => {
        expect((await byId(leaked)).State?.Name).toBe('terminated');
        return Date.now();
      },
      60_000,
      100,
    );
    // Not before the grace period (5s; EC2 launch times have second precision).
    expect(gone - started).toBeGreaterThanOrEqual(4_000);
    expect(await metric(ipp, 'ipp_leaked_instances_collected_total', { provider: 'aws' })).toBe(collectedBefore + 1);

    // Several more collections later, the other cluster's instance (same Instance name!) is untouched.
    const lists = () =>
      proxy.requests.filter(
        (r) =>
          r.action === 'DescribeInstances' &&
          r.params.get('Filter.1.Name') === 'tag:ipp.dev/cluster' &&
          r.params.get('Filter.1.Value.1') === cluster &&
          r.params.get('Filter.2.Name') === 'instance-state-name',
      ).length;
    const listed = lists();
    await eventually(
      'two more garbage collections',
      async () => expect(lists() - listed).toBeGreaterThanOrEqual(2),
      30_000,
    );
    expect((await byId(foreign)).State?.Name).toBe('running');
    // Not described, tagged or terminated by id: the controller never even looked at it.
    const touched = proxy.requests.filter((r) => [...r.params.values()].includes(foreign));
    expect(touched.map((r) => r.action)).toEqual([]);
    expect(tagsOf(await byId(foreign))).toMatchObject({ 'ipp.dev/cluster': other, 'ipp.dev/instance': leakedName });
    await moto.send(new TerminateInstancesCommand({ InstanceIds: [foreign] }));
  });

  it('IRSA: with no keys anywhere, the controller assumes its role with the web identity token and launches with the temporary credentials', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipp-irsa-'));
    const tokenFile = join(dir, 'token');
    // The projected ServiceAccount token EKS mounts (moto does not verify its signature).
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    writeFileSync(
      tokenFile,
      `${b64({ alg: 'RS256', kid: 'k' })}.${b64({ iss: 'https://oidc.eks.us-east-1.amazonaws.com/id/E2E', sub: `system:serviceaccount:${system}:ipp`, aud: ['sts.amazonaws.com'] })}.c2ln`,
    );
    const role = 'arn:aws:iam::123456789012:role/ipp-controller';
    await ipp.stop();
    const assumedBefore = proxy.count('AssumeRoleWithWebIdentity');
    const requestsBefore = proxy.requests.length;
    ipp = await start({
      ...noAmbientCredentials,
      AWS_ROLE_ARN: role,
      AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
      AWS_ROLE_SESSION_NAME: 'ipp',
      AWS_ENDPOINT_URL_STS: proxy.endpoint,
    });
    try {
      const cls = await awsClass('irsa', ['m5.large']);
      await deploy('irsa', cls);
      const inst = await theInstance(cls, (x) => expect(x.status?.providerID).toBeDefined());
      const i = await launchedFor(inst.metadata.name!);
      expect(providerIdOf(i)).toBe(inst.status!.providerID);

      expect(proxy.count('AssumeRoleWithWebIdentity') - assumedBefore).toBeGreaterThanOrEqual(1);
      const sts = proxy.requests.filter((r) => r.action === 'AssumeRoleWithWebIdentity').at(-1)!;
      expect(sts.params.get('RoleArn')).toBe(role);
      expect(sts.params.get('WebIdentityToken')).toBe(readFileSync(tokenFile, 'utf8'));
      // Every EC2 call of this process was signed with the key STS issued.
      const ec2 = proxy.requests.slice(requestsBefore).filter((r) => r.action !== 'AssumeRoleWithWebIdentity');
      expect(ec2.map((r) => r.action)).toContain('RunInstances');
      const keys = new Set(ec2.map((r) => r.accessKeyId));
      expect(keys.size).toBe(1);
      expect([...keys][0]).toMatch(/^ASIA/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
