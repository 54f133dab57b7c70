// `npm run testbed`: the same real control plane the e2e tests use, up until Ctrl-C.
import { ensureAssets } from './assets.ts';
import { startControlPlane } from './controlplane.ts';

const kubectl = '/usr/lib/google-cloud-sdk/bin/kubectl.1.33';

async function up(): Promise<void> {
  const assets = ensureAssets();
  const plane = await startControlPlane({ assets, log: (l) => console.error(`[testbed] ${l}`) });
  console.log(`
Control plane is up (data and logs in ${plane.dir}).

  export KUBECONFIG=${plane.kubeconfig}
  ${kubectl} get nodes,pods -A
  ${kubectl} version

Ctrl-C stops every component and removes ${plane.dir}.`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  console.error('[testbed] stopping');
  await plane.stop();
}

const command = process.argv[2] ?? 'up';
if (command === 'up') {
  await up();
} else {
  console.error(`usage: node test/testbed/cli.ts up`);
  process.exit(2);
}
