// What the caches keep of each pod and node. ipp caches every pod in the cluster (idle and audit
// decisions need every pod on an ipp node), so a pod's size in the cache is multiplied by the size of
// the cluster: keep what the controllers read, drop the rest as the object arrives.
//
// Kept: all metadata but managedFields and kubectl's last-applied copy; the pod spec except
// container details (only name, resources and restartPolicy, which sizing reads), ephemeral
// containers and non-PVC volumes; the pod status except per-container statuses. Code that starts to
// read something dropped here must keep it here too (test/unit/state/lean.test.ts lists the fields).
import type { V1Container, V1Node, V1Pod } from '@kubernetes/client-node';

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

function leanMetadata(o: V1Pod | V1Node): void {
  const m = o.metadata;
  if (!m) return;
  delete m.managedFields;
  if (m.annotations && LAST_APPLIED in m.annotations) {
    delete m.annotations[LAST_APPLIED];
    if (Object.keys(m.annotations).length === 0) delete m.annotations;
  }
}

const leanContainer = (c: V1Container): V1Container => ({
  name: c.name,
  ...(c.resources ? { resources: c.resources } : {}),
  // A restartable init container (sidecar) counts towards the pod's requests differently.
  ...(c.restartPolicy ? { restartPolicy: c.restartPolicy } : {}),
});

export function leanPod(p: V1Pod): V1Pod {
  leanMetadata(p);
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
