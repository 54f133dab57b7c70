// client-node sends patches as JSON Patch unless told otherwise; these options pick the other kinds.
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';

export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** A JSON Pointer (RFC 6901) from path segments: ('metadata', 'labels', 'ipp.dev/x') → /metadata/labels/ipp.dev~1x. */
export const pointer = (...segments: (string | number)[]) =>
  segments.map((s) => `/${String(s).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');

/** Strategic merge: lists with a merge key (pod conditions by type) are merged, not replaced. */
export const strategicMergePatch = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
