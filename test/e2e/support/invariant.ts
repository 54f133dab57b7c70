// The isolation invariant, checked for every e2e test file (vitest setupFiles: invariant-setup.ts)
// and written independently of the controller's auditor, so a bug there cannot hide here: no node
// ever hosts pods of two classes, a pod of a class runs only on an ipp node of that class, an ipp
// node hosts nothing else but node agents (DaemonSet pods from kube-system, mirror pods), and a node
// of a class with Pod isolation hosts one of its pods at a time.
// The cluster is sampled every POLL_MS while the file runs, and once more at its end.
import { GROUP, VERSION } from '../../../src/api/names.ts';
import type { InstanceClass } from '../../../src/api/types.ts';
import { clients } from './cluster.ts';
import { breaches, type Breach } from './isolation.ts';

export { breaches, type Breach };

const POLL_MS = 1_000;

/** Namespaces whose pods the current file places against the invariant on purpose (or trusts as agents). */
const allowed = new Set<string>();
export function allowIsolationViolations(...namespaces: string[]): void {
  for (const n of namespaces) allowed.add(n);
}

export function watchInvariant(): { stop(): Promise<Breach[]> } {
  const c = clients();
  const seen = new Map<string, Breach>();
  let failure: unknown;
  const sample = async () => {
    try {
      const [nodes, pods, namespaces, classes] = await Promise.all([
        c.core.listNode(),
        c.core.listPodForAllNamespaces(),
        c.core.listNamespace(),
        c.custom
          .listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'instanceclasses' })
          .then((l) => (l as { items: InstanceClass[] }).items)
          // Before a file installs the CRDs there are no classes.
          .catch(() => [] as InstanceClass[]),
      ]);
      const onePod = new Set(
        classes.filter((k) => (k.spec?.isolation ?? 'Pod') === 'Pod').map((k) => k.metadata!.name!),
      );
      const terminating = namespaces.items
        .filter((n) => n.status?.phase === 'Terminating')
        .map((n) => n.metadata!.name!);
      const skip = new Set([...allowed, ...terminating]);
      for (const b of breaches(nodes.items, pods.items, skip, onePod)) seen.set(`${b.pod}@${b.node}`, b);
    } catch (e) {
      failure = e;
    }
  };
  let running = sample();
  const timer = setInterval(() => {
    running = running.then(sample);
  }, POLL_MS);
  return {
    async stop() {
      clearInterval(timer);
      await running;
      await sample();
      if (failure && seen.size === 0) throw new Error(`could not check the isolation invariant: ${String(failure)}`);
      // Allowances made during the file count for all its samples, taken before them too.
      return [...seen.values()].filter((b) => !allowed.has(b.pod.split('/')[0]!));
    },
  };
}
