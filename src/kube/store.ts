// The informer's cache: objects by namespace/name plus secondary indexes (like client-go's
// cache.Indexer), kept up to date on every add, update, delete and relist, so a lookup such as
// "pods on node x" reads one small set instead of scanning every cached pod.
import type { KubernetesObject } from '@kubernetes/client-node';

/** The index values of one object (none, one or several); an object appears under each. */
export type IndexFunc<T> = (obj: T) => readonly string[];

export type Indexers<T> = Record<string, IndexFunc<T>>;

export const keyOf = (o: KubernetesObject): string =>
  o.metadata?.namespace ? `${o.metadata.namespace}/${o.metadata.name ?? ''}` : (o.metadata?.name ?? '');

export const keyFor = (name: string, namespace?: string): string => (namespace ? `${namespace}/${name}` : name);

/** What a relist changed, in the order an informer reports it. */
export interface ReplaceResult<T> {
  added: T[];
  /** Each with the object it replaced, as a watch update has: a claim moved during the gap wakes both Instances. */
  updated: { obj: T; old: T }[];
  deleted: T[];
}

export class IndexedStore<T extends KubernetesObject> {
  private readonly objects = new Map<string, T>();
  private readonly indexers: Indexers<T>;
  /**
   * index name → index value → key(s) of the objects with that value. A single key is stored as
   * the string itself: most values (a uid, a claim) have one object, and a Set each would cost
   * more than the lean object it points to.
   */
  private readonly indices = new Map<string, Map<string, string | Set<string>>>();

  constructor(indexers: Indexers<T> = {}) {
    this.indexers = indexers;
    for (const name of Object.keys(indexers)) this.indices.set(name, new Map());
  }

  get size(): number {
    return this.objects.size;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.objects.get(keyFor(name, namespace));
  }

  list(namespace?: string): T[] {
    const all = [...this.objects.values()];
    return namespace ? all.filter((o) => o.metadata?.namespace === namespace) : all;
  }

  /** Objects whose index `index` yields `value`; throws for an index that was never declared. */
  byIndex(index: string, value: string): T[] {
    const keys = this.declared(index).get(value);
    if (keys === undefined) return [];
    if (typeof keys === 'string') return [this.objects.get(keys)!];
    const out: T[] = [];
    for (const k of keys) out.push(this.objects.get(k)!);
    return out;
  }

  /** How many objects index `index` yields `value` for, without gathering them. */
  count(index: string, value: string): number {
    const keys = this.declared(index).get(value);
    return keys === undefined ? 0 : typeof keys === 'string' ? 1 : keys.size;
  }

  /** The index named `index`; a mistyped name must not read as "nobody" (every instance would look free). */
  private declared(index: string): Map<string, string | Set<string>> {
    const idx = this.indices.get(index);
    if (!idx) throw new Error(`no index named ${index}; declared: ${[...this.indices.keys()].join(', ') || 'none'}`);
    return idx;
  }

  /** Index values in use, e.g. every node name that has pods: for tests and metrics. */
  indexValues(index: string): string[] {
    return [...(this.indices.get(index)?.keys() ?? [])];
  }

  /** Adds or replaces; returns the object it replaced. */
  upsert(obj: T): T | undefined {
    const key = keyOf(obj);
    const old = this.objects.get(key);
    if (old) this.unindex(key, old);
    this.objects.set(key, obj);
    this.index(key, obj);
    return old;
  }

  /** Removes; returns what was cached (the caller reports that, not the possibly partial tombstone). */
  delete(obj: KubernetesObject): T | undefined {
    const key = keyOf(obj);
    const old = this.objects.get(key);
    if (!old) return undefined;
    this.unindex(key, old);
    this.objects.delete(key);
    return old;
  }

  /** Makes the store equal to `items` (a complete list) and says what changed. */
  replace(items: Iterable<T>): ReplaceResult<T> {
    const result: ReplaceResult<T> = { added: [], updated: [], deleted: [] };
    const seen = new Set<string>();
    for (const obj of items) {
      const key = keyOf(obj);
      seen.add(key);
      const old = this.upsert(obj);
      if (!old) result.added.push(obj);
      else if (old.metadata?.uid !== obj.metadata?.uid) {
        // Deleted and created again under the same name while the watch was down (a node that is now
        // another machine): told as the watch would have, not as an update of the first.
        result.deleted.push(old);
        result.added.push(obj);
      } else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion || !obj.metadata?.resourceVersion)
        result.updated.push({ obj, old });
    }
    for (const [key, old] of [...this.objects]) {
      if (seen.has(key)) continue;
      this.unindex(key, old);
      this.objects.delete(key);
      result.deleted.push(old);
    }
    return result;
  }

  private index(key: string, obj: T): void {
    for (const [name, fn] of Object.entries(this.indexers)) {
      const idx = this.indices.get(name)!;
      for (const v of fn(obj)) {
        const keys = idx.get(v);
        if (keys === undefined || keys === key) idx.set(v, key);
        else if (typeof keys === 'string') idx.set(v, new Set([keys, key]));
        else keys.add(key);
      }
    }
  }

  private unindex(key: string, obj: T): void {
    for (const [name, fn] of Object.entries(this.indexers)) {
      const idx = this.indices.get(name)!;
      for (const v of fn(obj)) {
        const keys = idx.get(v);
        if (keys === undefined) continue;
        if (typeof keys === 'string') {
          if (keys === key) idx.delete(v);
          continue;
        }
        keys.delete(key);
        if (keys.size === 1) idx.set(v, keys.values().next().value!);
        else if (keys.size === 0) idx.delete(v);
      }
    }
  }
}
