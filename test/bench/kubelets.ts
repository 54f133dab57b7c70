// The simulated machines' kubelets in a process of their own, for benchmarks: a real cluster's
// kubelets run on their machines, so their watches and registrations must not count as the
// controller's CPU. The controller then runs with --no-simulated-kubelets.
// Usage: node test/bench/kubelets.ts <kubeconfig> <cluster name> <cloud namespace>
import { SimulatedKubelets } from '../../providers/simulated/kubelets.ts';
import { apiClientConfig } from '../../src/kube/client.ts';
import { createLogger } from '../../src/log.ts';

const [kubeconfig, clusterName, namespace] = process.argv.slice(2);
if (!kubeconfig || !clusterName || !namespace)
  throw new Error('usage: node test/bench/kubelets.ts <kubeconfig> <cluster name> <cloud namespace>');
const ac = new AbortController();
for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => ac.abort());
const kc = apiClientConfig(kubeconfig);
await new SimulatedKubelets({ kubeconfig: kc, clusterName, namespace, logger: createLogger('info') }).run(ac.signal);
await kc.close();
