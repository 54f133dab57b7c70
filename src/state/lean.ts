// What the caches keep of each pod and node. ipp caches every pod in the cluster, so a pod's size in
// the cache is multiplied by the size of the cluster: keep what the controllers read, drop the rest
// as the object arrives.
//
// ipp pods (the ipp-class label, the ipp scheduler name or an ipp-* RuntimeClass): all metadata but
// managedFields and the annotations ipp does not read; the spec except container details
// (only name, requests and restartPolicy, which sizing reads), ephemeral containers and volumes other
// than claims; the status except per-container statuses.
//
// Every other pod matters to ipp only as an occupant of a node (idle decisions, the isolation audit,
// capacity taken by DaemonSet pods), so it keeps only: name, namespace, uid, resourceVersion,
// creation and deletion timestamps, its controller reference, the annotations ipp reads;
// nodeName, runtimeClassName, schedulerName, priority, container and pod-level requests and overhead;
// the phase.
// What such pods hold alike (owner, containers, namespace, node name, phase) is kept once (shared.ts).
// Code that starts to read something dropped here must keep it here too (test/unit/state/lean.test.ts).
import type { V1Container, V1Node, V1ObjectMeta, V1Pod } from '@kubernetes/client-node';
import {
  CLASS_LABEL,
  DO_NOT_DISRUPT_ANNOTATION,
  POD_INSTANCE_ANNOTATION,
  POD_PINNED_AT_ANNOTATION,
  SCHEDULER_NAME,
} from '../api/names.ts';
import { MIRROR_ANNOTATION } from '../api/pods.ts';
import { Shared } from './shared.ts';

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

function leanMetadata(o: V1Pod | V1Node): void {
  const m = o.metadata;
  if (!m) return;
  delete m.managedFields;
  // An emptied map stays: the claim then adds its annotation into it, where a JSON Patch creating the
  // map would replace the API server's (last-applied included), which the scope policy refuses.
  if (m.annotations && LAST_APPLIED in m.annotations) delete m.annotations[LAST_APPLIED];
}

// Requests only: limits decide nothing here (the API server sets requests from limits when a pod names only limits).
const leanContainer = (c: V1Container): V1Container => ({
  name: c.name,
  ...(c.resources?.requests ? { resources: { requests: c.resources.requests } } : {}),
  // A restartable init container (sidecar) counts towards the pod's requests differently.
  ...(c.restartPolicy ? { restartPolicy: c.restartPolicy } : {}),
});

/**
 * The pod annotations ipp reads. Every other is dropped as the pod arrives, ipp pods' too: anyone who
 * may create a pod may give it 256 KiB of annotations (an `ipp.dev/` key included), and thousands of
 * such pods, never scheduled, would otherwise fill every replica's cache past its memory limit.
 */
const READ_ANNOTATIONS = [
  POD_INSTANCE_ANNOTATION,
  POD_PINNED_AT_ANNOTATION,
  DO_NOT_DISRUPT_ANNOTATION,
  MIRROR_ANNOTATION,
];
/** Longer than any value ipp writes or reads there (an object name, a time, "true", a config hash): dropped. */
const MAX_ANNOTATION_LENGTH = 253;

function readAnnotations(all: Record<string, string>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const k of READ_ANNOTATIONS) {
    const v = all[k];
    if (typeof v === 'string' && v.length <= MAX_ANNOTATION_LENGTH) kept[k] = v;
  }
  return kept;
}

/**
 * Is this pod ipp's to provision (or about to be)? Then it keeps its full (lean) form. Not by an
 * annotation: a claim on a pod of no class claims nothing, and anyone may write one.
 */
export function isIppPod(p: V1Pod): boolean {
  return (
    p.metadata?.labels?.[CLASS_LABEL] !== undefined ||
    p.spec?.schedulerName === SCHEDULER_NAME ||
    (p.spec?.runtimeClassName ?? '').startsWith('ipp-')
  );
}

export function leanPod(p: V1Pod): V1Pod {
  return isIppPod(p) ? leanIppPod(p) : occupant(p);
}

function leanIppPod(p: V1Pod): V1Pod {
  leanMetadata(p);
  // The map itself stays, emptied or not (leanMetadata says why).
  if (p.metadata?.annotations) p.metadata.annotations = readAnnotations(p.metadata.annotations);
  const spec = p.spec;
  if (spec) {
    spec.containers = (spec.containers ?? []).map(leanContainer);
    if (spec.initContainers) spec.initContainers = spec.initContainers.map(leanContainer);
    delete spec.ephemeralContainers;
    if (spec.volumes) {
      // Only claims can pin a pod to a zone; config, secret and projected volumes are just bulk.
      const claims = spec.volumes
        .filter((v) => v.persistentVolumeClaim || v.ephemeral)
        .map((v) => ({
          name: v.name,
          ...(v.persistentVolumeClaim ? { persistentVolumeClaim: v.persistentVolumeClaim } : {}),
          ...(v.ephemeral ? { ephemeral: v.ephemeral } : {}),
        }));
      if (claims.length) spec.volumes = claims;
      else delete spec.volumes;
    }
  }
  const status = p.status;
  if (status) {
    delete status.containerStatuses;
    delete status.initContainerStatuses;
    delete status.ephemeralContainerStatuses;
  }
  return p;
}

/** Values many occupants hold alike (owners, containers' requests, namespaces, node names), kept once. */
const shared = new Shared();

/** A pod that is not ipp's: only what makes it an occupant of a node. A new object, so the parsed one can go. */
function occupant(p: V1Pod): V1Pod {
  const m = p.metadata ?? {};
  const controller = m.ownerReferences?.find((r) => r.controller);
  const annotations = Object.entries(readAnnotations(m.annotations ?? {}));
  const metadata: V1ObjectMeta = {
    name: m.name,
    namespace: shared.string(m.namespace),
    uid: m.uid,
    resourceVersion: m.resourceVersion,
    creationTimestamp: m.creationTimestamp,
    ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}),
    ...(controller
      ? {
          ownerReferences: shared.value([
            {
              apiVersion: controller.apiVersion,
              kind: controller.kind,
              name: controller.name,
              uid: controller.uid,
              controller: true,
            },
          ]),
        }
      : {}),
    ...(annotations.length ? { annotations: Object.fromEntries(annotations) } : {}),
  };
  for (const k of Object.keys(metadata) as (keyof V1ObjectMeta)[]) if (metadata[k] === undefined) delete metadata[k];
  const s = p.spec;
  return {
    metadata,
    spec: {
      containers: shared.value((s?.containers ?? []).map(leanContainer)),
      ...(s?.initContainers ? { initContainers: shared.value(s.initContainers.map(leanContainer)) } : {}),
      ...(s?.nodeName ? { nodeName: shared.string(s.nodeName) } : {}),
      ...(s?.overhead ? { overhead: shared.value(s.overhead) } : {}),
      ...(s?.resources?.requests ? { resources: shared.value({ requests: s.resources.requests }) } : {}),
      ...(s?.runtimeClassName ? { runtimeClassName: shared.string(s.runtimeClassName) } : {}),
      ...(s?.schedulerName ? { schedulerName: shared.string(s.schedulerName) } : {}),
      ...(s?.priority !== undefined ? { priority: s.priority } : {}),
    },
    ...(p.status?.phase ? { status: shared.value({ phase: p.status.phase }) } : {}),
  };
}

export function leanNode(n: V1Node): V1Node {
  leanMetadata(n);
  const status = n.status;
  if (status) {
    // A real node lists every image it holds (often hundreds of names), and its attached volumes.
    delete status.images;
    delete status.volumesAttached;
    delete status.volumesInUse;
  }
  return n;
}
