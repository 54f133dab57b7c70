// One copy of what many cached pods hold alike. Every pod of a ReplicaSet carries the same owner, the
// same containers' requests, the same namespace, and thousands share a node name and a phase; parsed
// from JSON, each pod would hold its own copy of each (a fresh string per value, a fresh object per
// map): most of what a cached pod costs. The copies handed out are frozen, since every pod holding one
// shares it: a controller that writes into a cached object now fails loudly instead of changing other
// pods.
//
// The tables forget everything once full, so churn (ReplicaSets replaced, nodes renamed) cannot grow
// them without bound: values handed out before stay valid, later ones are shared afresh.

const deepFreeze = <T>(v: T): T => {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const child of Object.values(v)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
};

export class Shared {
  private readonly strings = new Map<string, string>();
  private readonly values = new Map<string, unknown>();

  private readonly capacity: number;

  constructor(capacity = 20_000) {
    this.capacity = capacity;
  }

  /** The shared copy of a string (a namespace, a node name). */
  string<S extends string | undefined>(s: S): S {
    if (s === undefined) return s;
    const known = this.strings.get(s);
    if (known !== undefined) return known as S;
    if (this.strings.size >= this.capacity) this.strings.clear();
    this.strings.set(s, s);
    return s;
  }

  /** The shared, frozen copy of a JSON-shaped value equal to `v` (compared by its JSON). */
  value<T>(v: T): T {
    const key = JSON.stringify(v);
    const known = this.values.get(key);
    if (known !== undefined) return known as T;
    if (this.values.size >= this.capacity) this.values.clear();
    this.values.set(key, deepFreeze(v));
    return v;
  }
}
