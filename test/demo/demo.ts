// `npm run demo`: a local control plane, the CRDs, ipp with the simulated provider, and the original
// Instance-per-Pod example (Deployment foo, nginx, ipp-class: class0) plus a second class. It shows,
// live, pods getting nodes of their own, then scale-down and idle teardown. `--keep` stays up after.
import { join } from 'node:path';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type V1Pod,
} from '@kubernetes/client-node';
import { ensureAssets } from '../testbed/assets.ts';
import { startControlPlane } from '../testbed/controlplane.ts';
import { installCrds } from '../testbed/crds.ts';
import { freePort, startChild, waitFor, type Child } from '../testbed/process.ts';
import { API_VERSION, GROUP, NODE_CLASS_LABEL, NODE_INSTANCE_LABEL, VERSION } from '../../src/api/names.ts';
import type { Instance } from '../../src/api/types.ts';
import { webhookConfiguration } from '../../src/webhook/configuration.ts';

const keep = process.argv.includes('--keep');
const root = join(import.meta.dirname, '..', '..');
const say = (s: string) => console.log(`\x1b[1m▶ ${s}\x1b[0m`);
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;

const plane = await startControlPlane({ assets: ensureAssets(), log: (l) => console.error(`[testbed] ${l}`) });
const kc = new KubeConfig();
kc.loadFromFile(plane.kubeconfig);
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);

let controller: Child | undefined;
const shutdown = async () => {
  await controller?.stop();
  await plane.stop();
};
process.once('SIGINT', () => void shutdown().then(() => process.exit(130)));

try {
  say('installing the CRDs and the webhook configuration (what `helm install` does)');
  await installCrds(kc);
  for (const name of ['ipp-system', 'demo']) await core.createNamespace({ body: { metadata: { name } } });
  const webhookPort = await freePort();
  const metricsPort = await freePort();
  await kc.makeApiClient(AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
    body: webhookConfiguration({
      name: 'ipp',
      client: { url: `https://127.0.0.1:${webhookPort}` },
      controllerNamespace: 'ipp-system',
    }),
  });

  say('starting the ipp controller (simulated provider); its log: ' + join(plane.dir, 'logs', 'ipp.log'));
  controller = startChild(
    'ipp',
    process.execPath,
    [
      join(root, 'src', 'main.ts'),
      '--cluster-name=demo',
      `--kubeconfig=${plane.kubeconfig}`,
      '--providers=simulated',
      '--no-leader-elect',
      '--namespace=ipp-system',
      '--simulated-namespace=ipp-system',
      `--metrics-port=${metricsPort}`,
      '--metrics-host=127.0.0.1',
      `--webhook-port=${webhookPort}`,
      '--webhook-host=127.0.0.1',
      `--webhook-url=https://127.0.0.1:${webhookPort}`,
      '--webhook-config-name=ipp',
    ],
    join(plane.dir, 'logs', 'ipp.log'),
  );
  await waitFor('ipp /readyz', async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).ok, 60_000);

  say('two InstanceClasses: class0 (one pod per instance) and class1 (pods of the class share instances)');
  const ic = (name: string, spec: object) =>
    custom.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: 'instanceclasses',
      body: { apiVersion: API_VERSION, kind: 'InstanceClass', metadata: { name }, spec },
    });
  await ic('class0', {
    namespaces: ['*'],
    isolation: 'Pod',
    instanceTypes: ['sim.metal', 'sim.large'],
    idleTimeout: '15s',
    simulated: { bootDelay: '3s', unavailableInstanceTypes: ['sim.metal'] },
  });
  await ic('class1', {
    namespaces: ['*'],
    isolation: 'Class',
    instanceTypes: ['sim.small'],
    idleTimeout: '15s',
    simulated: { bootDelay: '2s' },
  });
  console.log('  (class0 prefers sim.metal, which the simulated cloud is out of: watch it fall back to sim.large)');

  say(
    "applying the original project's Deployment foo (nginx, ipp-class: class0) with 3 replicas, and bar (class1) with 3",
  );
  const deployment = (name: string, cls: string, replicas: number, cpu: string) => ({
    metadata: { name, labels: { app: name, 'ipp-class': cls } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, 'ipp-class': cls } },
        spec: { containers: [{ name: 'nginx', image: 'nginx:alpine', resources: { requests: { cpu } } }] },
      },
    },
  });
  await apps.createNamespacedDeployment({ namespace: 'demo', body: deployment('foo', 'class0', 3, '100m') });
  await apps.createNamespacedDeployment({ namespace: 'demo', body: deployment('bar', 'class1', 3, '800m') });

  let last = '';
  const show = async (): Promise<{ running: number; pods: number; instances: number; nodes: number }> => {
    const pods = (await core.listNamespacedPod({ namespace: 'demo' })).items;
    const nodes = (await core.listNode({ labelSelector: NODE_CLASS_LABEL })).items;
    const instances = (
      (await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'instances' })) as {
        items: Instance[];
      }
    ).items;
    const lines = [
      `  ${'INSTANCE'.padEnd(16)} ${'CLASS'.padEnd(7)} ${'PHASE'.padEnd(10)} ${'TYPE'.padEnd(10)} ${'NODE'.padEnd(24)} PODS`,
    ];
    for (const i of instances.sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!))) {
      const on = pods
        .filter((p: V1Pod) => p.spec?.nodeName && p.spec.nodeName === i.status?.nodeName)
        .map((p) => p.metadata!.name!.replace(/-[a-z0-9]+-/, '-…-'));
      lines.push(
        `  ${i.metadata.name!.padEnd(16)} ${i.spec.class.padEnd(7)} ${(i.metadata.deletionTimestamp ? 'Draining' : (i.status?.phase ?? 'Pending')).padEnd(10)} ${(i.status?.instanceType ?? '').padEnd(10)} ${(i.status?.nodeName ?? '').padEnd(24)} ${on.join(', ') || (i.status?.idleSince ? '(idle)' : '')}`,
      );
    }
    const waiting = pods.filter((p) => !p.spec?.nodeName).map((p) => p.metadata!.name!);
    if (waiting.length) lines.push(`  waiting for an instance: ${waiting.join(', ')}`);
    const text = lines.join('\n');
    if (text !== last) {
      console.log(`\n[${elapsed()}] nodes: ${nodes.length}, instances: ${instances.length}`);
      console.log(text);
      last = text;
    }
    return {
      running: pods.filter((p) => p.status?.phase === 'Running').length,
      pods: pods.length,
      instances: instances.length,
      nodes: nodes.length,
    };
  };
  const until = async (what: string, done: (s: Awaited<ReturnType<typeof show>>) => boolean, timeoutMs = 120_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await show();
      if (done(s)) return;
      if (Date.now() > deadline)
        throw new Error(`demo: timed out waiting for ${what}; see ${join(plane.dir, 'logs', 'ipp.log')}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  };

  await until('all 6 pods running', (s) => s.pods === 6 && s.running === 6);
  say(`all 6 pods run, each foo pod on a node of its own, bar pods packed by capacity (${elapsed()})`);
  const pods = (await core.listNamespacedPod({ namespace: 'demo' })).items;
  for (const p of pods) {
    const node = await core.readNode({ name: p.spec!.nodeName! });
    console.log(
      `  ${p.metadata!.name!.padEnd(24)} → ${p.spec!.nodeName!.padEnd(24)} node class ${node.metadata!.labels![NODE_CLASS_LABEL]}, instance ${node.metadata!.labels![NODE_INSTANCE_LABEL]}`,
    );
  }

  say('scaling foo to 1 and bar to 0: idle instances are torn down after idleTimeout (15s)');
  const scale = (name: string, replicas: number) =>
    apps.patchNamespacedDeploymentScale({
      name,
      namespace: 'demo',
      body: [{ op: 'replace', path: '/spec/replicas', value: replicas }],
    });
  await scale('foo', 1);
  await scale('bar', 0);
  await until('teardown to one instance', (s) => s.instances === 1 && s.nodes === 1);
  say(`scale to zero (${elapsed()})`);
  await scale('foo', 0);
  await until('everything torn down', (s) => s.instances === 0 && s.nodes === 0);
  say(`done in ${elapsed()}: every instance launched for the demo has been terminated`);

  if (keep) {
    console.log(
      `\nStill up (Ctrl-C stops it):\n  export KUBECONFIG=${plane.kubeconfig}\n  /usr/lib/google-cloud-sdk/bin/kubectl.1.33 get ic,inst,nodes\n  curl -s http://127.0.0.1:${metricsPort}/metrics | grep ^ipp_`,
    );
    await new Promise(() => {});
  }
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
} finally {
  if (!keep) await shutdown();
}
