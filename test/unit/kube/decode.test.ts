// parseLean(): the API server's JSON parsed without metadata.managedFields, equal to parsing it whole
// and deleting them, whatever the key order and whatever the strings inside hold.
import { describe, expect, it } from 'vitest';
import { parseLean, withoutManagedFields } from '../../../src/kube/decode.ts';
import { managedFieldsEntry } from './managed-fields.ts';

type Obj = { metadata?: { managedFields?: unknown[]; [k: string]: unknown }; [k: string]: unknown };

/** What the informer kept before: the whole text parsed, managedFields deleted. */
const expected = (o: unknown): unknown => {
  const copy = JSON.parse(JSON.stringify(o)) as { items?: Obj[]; object?: Obj } & Obj;
  const strip = (x: Obj) => delete x.metadata?.managedFields;
  if (copy.items) copy.items.forEach(strip);
  else if (copy.object) strip(copy.object);
  else strip(copy);
  return copy;
};

const entry = managedFieldsEntry;

// A pod as kube-apiserver writes one (Go struct order: managedFields last in metadata), with field
// names holding what could mislead a scan: `]`, escaped quotes, backslashes, the key itself.
const pod = {
  kind: 'Pod',
  apiVersion: 'v1',
  metadata: {
    name: 'web-1',
    namespace: 'team-a',
    labels: { 'ipp-class': 'metal' },
    annotations: { note: 'says "managedFields":[ and ] inside a value', path: 'C:\\dir\\' },
    managedFields: [
      entry('kubectl', {
        'f:spec': { 'f:containers': { 'k:{"name":"a]b"}': { '.': {}, 'f:env': { 'k:{"name":"X\\\\"}': {} } } } },
      }),
      entry('ipp', { 'f:metadata': { 'f:annotations': { 'f:ipp.dev/instance': {}, 'v:"]]\\"\\\\"': {} } } }),
    ],
  },
  spec: { containers: [{ name: 'a]b', image: 'postfix' }], nodeName: 'n1' },
  status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
};

// A custom resource as the API server writes it (keys sorted: managedFields in the middle).
const instance = {
  apiVersion: 'ipp.dev/v1alpha1',
  kind: 'Instance',
  metadata: {
    creationTimestamp: '2026-11-30T21:17:08Z',
    finalizers: ['ipp.dev/terminate'],
    managedFields: [entry('ipp', { 'f:metadata': { 'f:finalizers': { '.': {}, 'v:"ipp.dev/terminate"': {} } } })],
    name: 'metal-1',
    resourceVersion: '42',
  },
  spec: { class: 'metal' },
};

describe('parseLean', () => {
  it('parses a pod, a custom resource, a watch event and a LIST page as parse-then-delete would', () => {
    for (const o of [
      pod,
      instance,
      { type: 'MODIFIED', object: pod },
      { kind: 'PodList', metadata: { resourceVersion: '9' }, items: [pod, instance, pod] },
    ]) {
      const text = JSON.stringify(o);
      expect(withoutManagedFields(text)).not.toContain('"managedFields":');
      expect(parseLean(text)).toEqual(expected(o));
    }
  });

  it('cuts a managedFields that is the only or the first member', () => {
    const only = { metadata: { managedFields: [entry('a', {})] } };
    const first = { metadata: { managedFields: [], name: 'x' } };
    expect(parseLean(JSON.stringify(only))).toEqual({ metadata: {} });
    expect(parseLean(JSON.stringify(first))).toEqual({ metadata: { name: 'x' } });
  });

  it('parses the text whole when the cut would not leave JSON (an array inside an entry)', () => {
    const odd = { metadata: { name: 'x', managedFields: [{ ...entry('a', {}), extra: [1, [2]] }] }, spec: {} };
    const parsed = parseLean<Obj>(JSON.stringify(odd));
    expect(parsed).toEqual(odd);
  });

  it('parses whole a key that only ends in managedFields (an escaped quote before it)', () => {
    // Cut there, this text would leave valid JSON of other keys: {"a":1,"b\"c":3}.
    const text = '{"a":1,"b\\"managedFields":[2],"c":3}';
    expect(withoutManagedFields(text)).toBeUndefined();
    expect(parseLean(text)).toEqual(JSON.parse(text));
  });

  it('leaves text without managedFields to JSON.parse, errors included', () => {
    expect(withoutManagedFields('{"a":1}')).toBeUndefined();
    expect(parseLean('{"a":[1]}')).toEqual({ a: [1] });
    expect(() => parseLean('{"managedFields":[')).toThrow(SyntaxError);
  });

  it('agrees with parse-then-delete on random objects whose strings hold brackets, quotes and backslashes', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const alphabet = ['a', ']', '[', '"', '\\', ',', ':', '{', '}', ' ', 'é', '\n'];
    const str = () => Array.from({ length: rand(8) }, () => alphabet[rand(alphabet.length)]).join('');
    const tree = (depth: number): Record<string, unknown> =>
      Object.fromEntries(
        Array.from({ length: rand(4) }, () => [`f:${str()}`, depth > 0 && rand(2) ? tree(depth - 1) : {}]),
      );
    for (let i = 0; i < 300; i++) {
      const o = {
        kind: 'Pod',
        metadata: {
          name: str(),
          annotations: { [str()]: str() },
          managedFields: Array.from({ length: rand(4) }, () => entry(str(), tree(3))),
          ...(rand(2) ? { zzz: [str()] } : {}),
        },
        spec: { values: [str(), [str()]] },
      };
      expect(parseLean(JSON.stringify(o))).toEqual(expected(o));
    }
  });
});
