// client-node sends patches as JSON Patch unless told otherwise; these options pick the other kinds.
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';

export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** Escapes a key for a JSON Pointer (RFC 6901): "ipp.dev/instance" → "ipp.dev~1instance". */
export const pointer = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');
