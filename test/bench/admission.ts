// The API server's own admission path for a burst (`--admission=apiserver`): the tree's webhook
// configuration, as that tree's own code builds it (and as its chart renders it, with the controller's
// identity), registered against that tree's controller. Pods are then created as a user writes them,
// and every webhook call a burst costs is the API server's: the mutation of each pod, and whatever
// the tree's match conditions send to enforcement (a claim, a pin). Sending each pod's review
// directly (`--admission=direct`) covers the mutation alone.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  AdmissionregistrationV1Api,
  type KubeConfig,
  type V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { ownUsername } from '../../src/webhook/identity.ts';
import type { Tree } from './controller.ts';

interface ConfigurationInput {
  name: string;
  client: { url: string };
  controllerNamespace: string;
  controllerUsername: string;
}

/**
 * The tree's MutatingWebhookConfiguration from its own src/webhook/configuration.ts, built in a
 * process of its own: two trees' modules never load into one process.
 */
function treeConfiguration(tree: Tree, input: ConfigurationInput): V1MutatingWebhookConfiguration {
  const module = pathToFileURL(join(tree.root, 'src', 'webhook', 'configuration.ts')).href;
  const script =
    `const { webhookConfiguration } = await import(${JSON.stringify(module)});` +
    `process.stdout.write(JSON.stringify(webhookConfiguration(${JSON.stringify(input)})));`;
  return JSON.parse(
    execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }),
  ) as V1MutatingWebhookConfiguration;
}

/**
 * Registers `tree`'s webhooks, calling `url`, under `name` (the configuration whose caBundle the
 * controller keeps: register before starting it). Returns what removes them: before the controller
 * stops, or every opted-in pod of the testbed is refused (failurePolicy Fail).
 */
export async function registerWebhooks(
  kc: KubeConfig,
  tree: Tree,
  name: string,
  url: string,
  controllerNamespace: string,
): Promise<() => Promise<void>> {
  const api = kc.makeApiClient(AdmissionregistrationV1Api);
  // The controller runs with the bench's kubeconfig: its identity is the bench's own.
  const body = treeConfiguration(tree, {
    name,
    client: { url },
    controllerNamespace,
    controllerUsername: await ownUsername(kc),
  });
  await api.deleteMutatingWebhookConfiguration({ name }).catch(() => {});
  await api.createMutatingWebhookConfiguration({ body });
  return async () => {
    await api.deleteMutatingWebhookConfiguration({ name }).catch(() => {});
  };
}

/** Until the controller has put its CA into the configuration's every webhook (it does as it starts). */
export async function caBundlePatched(kc: KubeConfig, name: string): Promise<void> {
  const api = kc.makeApiClient(AdmissionregistrationV1Api);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const cfg = await api.readMutatingWebhookConfiguration({ name });
    if ((cfg.webhooks ?? []).every((w) => w.clientConfig.caBundle)) return;
    if (Date.now() > deadline) throw new Error(`the controller did not patch caBundle into ${name} within 60 s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** kube-apiserver's calls to each webhook (apiserver_admission_webhook_request_total), by webhook name. */
export function webhookCalls(metrics: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('apiserver_admission_webhook_request_total{')) continue;
    const name = /\bname="([^"]*)"/.exec(line)?.[1] ?? '?';
    out.set(name, (out.get(name) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}
