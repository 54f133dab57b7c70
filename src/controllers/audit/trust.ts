// Which pods on an ipp node are node agents the platform team vouches for: pods of a DaemonSet in a
// trusted namespace whose controller reference resolves to that real DaemonSet (same UID), and the
// node's own mirror pods. The DaemonSet lookups are direct reads, remembered by owner UID (a UID is
// never reused, so an answer never goes stale); until one answers, the pod is 'unknown', and the
// nodes whose audit waited on it are handed to `onSettled` to be audited again.
import type { AppsV1Api, V1DaemonSet, V1Node, V1Pod } from '@kubernetes/client-node';
import { isDaemonSetPod } from '../../api/pods.ts';
import { isNotFound } from '../../kube/errors.ts';
import type { Logger } from '../../log.ts';
import { isOwnMirrorPod, type Standing } from './violations.ts';

/** Reads one DaemonSet; undefined when the apiserver says it does not exist, rejects when it could not tell. */
export type DaemonSetReader = (namespace: string, name: string) => Promise<V1DaemonSet | undefined>;

/** Told, once a read answers (`answered`) or fails, which nodes asked about that owner meanwhile. */
export type VerdictListener = (nodes: string[], answered: boolean) => void;

export class NodeAgentTrust {
  private readonly namespaces: readonly string[];
  private readonly read: DaemonSetReader | undefined;
  private readonly logger: Logger | undefined;
  /** Owner UID → whether it is a real DaemonSet; absent while unknown. */
  private readonly verdicts = new Map<string, boolean>();
  private readonly pending = new Set<string>();
  /** Owner UID → the nodes whose pods' standing waits for that owner's verdict. */
  private readonly waiting = new Map<string, Set<string>>();
  private readonly onSettled: VerdictListener | undefined;

  constructor(namespaces: readonly string[], read?: DaemonSetReader, logger?: Logger, onSettled?: VerdictListener) {
    this.namespaces = namespaces;
    this.read = read;
    this.logger = logger;
    this.onSettled = onSettled;
  }

  standing(pod: V1Pod, node: V1Node): Standing {
    if (isOwnMirrorPod(pod, node)) return 'agent';
    if (!isDaemonSetPod(pod) || !this.namespaces.includes(pod.metadata?.namespace ?? '')) return 'workload';
    const owner = (pod.metadata?.ownerReferences ?? []).find((r) => r.kind === 'DaemonSet' && r.controller);
    if (!owner?.uid) return 'workload';
    // Without a reader (a caller that did not wire one) the namespace is the only check left.
    if (!this.read) return 'agent';
    const verdict = this.verdicts.get(owner.uid);
    if (verdict !== undefined) return verdict ? 'agent' : 'workload';
    this.verify(pod.metadata!.namespace!, owner.name, owner.uid, node.metadata?.name);
    return 'unknown';
  }

  /** Forget verdicts for owners no pod names any more. */
  retain(ownerUids: ReadonlySet<string>): void {
    for (const uid of this.verdicts.keys()) if (!ownerUids.has(uid)) this.verdicts.delete(uid);
  }

  /** Resolves when every read started so far has answered (tests). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await new Promise((r) => setTimeout(r, 10));
  }

  private verify(namespace: string, name: string, uid: string, node: string | undefined): void {
    if (node) {
      const nodes = this.waiting.get(uid) ?? new Set<string>();
      nodes.add(node);
      this.waiting.set(uid, nodes);
    }
    if (this.pending.has(uid) || !this.read) return;
    this.pending.add(uid);
    let answered = false;
    this.read(namespace, name)
      .then((ds) => {
        this.verdicts.set(uid, ds?.metadata?.uid === uid);
        answered = true;
      })
      .catch((e: unknown) => {
        // Not known: asked again when the listener audits those nodes again.
        this.logger?.warn({ err: e, daemonSet: `${namespace}/${name}` }, 'could not read DaemonSet to verify its pods');
      })
      .finally(() => {
        this.pending.delete(uid);
        const nodes = [...(this.waiting.get(uid) ?? [])];
        this.waiting.delete(uid);
        this.onSettled?.(nodes, answered);
      });
  }
}

/** The reader the controller uses: a direct GET (RBAC: get daemonsets in the trusted namespaces). */
export function daemonSetReader(apps: AppsV1Api): DaemonSetReader {
  return async (namespace, name) => {
    try {
      return await apps.readNamespacedDaemonSet({ namespace, name });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  };
}
