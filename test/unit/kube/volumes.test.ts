// What the volume lookup decides from the reads it makes: zones of bound volumes and of claims that
// wait for their node, pods held for claims that do not, how often those are read again, and a
// StorageClass it may not read. The reads are a fake of ipp's own StorageReads; the API calls
// themselves run in test/e2e/faults-unschedulable.test.ts.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1Pod, V1StorageClass } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log.ts';
import { ClaimNotBoundError, VolumeReader, type StorageReads } from '../../../src/kube/volumes.ts';

const pod = (name: string, claim = 'data'): V1Pod => ({
  metadata: { name, namespace: 'db', uid: `uid-${name}` },
  spec: { containers: [], volumes: [{ name: 'data', persistentVolumeClaim: { claimName: claim } }] },
});
/** A claim, bound to `volumeName` when one is given. */
const claim = (storageClassName?: string, volumeName?: string): V1PersistentVolumeClaim => ({
  metadata: { name: 'data', namespace: 'db' },
  spec: { ...(storageClassName !== undefined ? { storageClassName } : {}), ...(volumeName ? { volumeName } : {}) },
  ...(volumeName ? { status: { phase: 'Bound' } } : {}),
});
const onlyB: V1StorageClass['allowedTopologies'] = [
  { matchLabelExpressions: [{ key: 'topology.kubernetes.io/zone', values: ['b'] }] },
];

/** Reads served from plain fields, counted; a StorageClass read may be made to fail. */
function reads(o: {
  claims?: Record<string, V1PersistentVolumeClaim>;
  classes?: Record<string, V1StorageClass>;
  volumes?: Record<string, V1PersistentVolume>;
  classError?: unknown;
}) {
  const count = { claim: 0, volume: 0, storageClass: 0 };
  const r: StorageReads = {
    claim: async (_ns, name) => (count.claim++, o.claims?.[name]),
    volume: async (name) => (count.volume++, o.volumes?.[name]),
    storageClass: async (name) => {
      count.storageClass++;
      await new Promise((res) => setTimeout(res, 1));
      if (o.classError) throw o.classError;
      return o.classes?.[name];
    },
  };
  return { r, count };
}

const sc = (name: string, mode: string, allowedTopologies?: V1StorageClass['allowedTopologies']): V1StorageClass => ({
  metadata: { name },
  provisioner: 'x',
  volumeBindingMode: mode,
  ...(allowedTopologies ? { allowedTopologies } : {}),
});

/** A volume in zone `zone`, bound to the claim of UID `claimUid` (none when undefined). */
const volumeIn = (name: string, zone: string, claimUid?: string): V1PersistentVolume => ({
  metadata: { name },
  spec: {
    ...(claimUid ? { claimRef: { namespace: 'db', name: 'data', uid: claimUid } } : {}),
    nodeAffinity: {
      required: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: [zone] }] },
        ],
      },
    },
  },
});

describe('VolumeReader', () => {
  it("takes a bound volume's zone only when the claim and the volume both say they are bound to each other", async () => {
    const bound: V1PersistentVolumeClaim = {
      metadata: { name: 'data', namespace: 'db', uid: 'pvc-1' },
      spec: { volumeName: 'pv-1' },
      status: { phase: 'Bound' },
    };
    const { r } = reads({ claims: { data: bound }, volumes: { 'pv-1': volumeIn('pv-1', 'c', 'pvc-1') } });
    expect(await new VolumeReader(r).zoneRequirements(pod('p'))).toEqual([
      { source: 'PersistentVolume pv-1 (claim data)', terms: [{ in: ['c'], notIn: [] }] },
    ]);

    // A tenant's claim naming someone else's volume: never bound, so the volume is not even read...
    const named: V1PersistentVolumeClaim = { ...bound, status: { phase: 'Pending' } };
    const pending = reads({ claims: { data: named }, volumes: { 'pv-1': volumeIn('pv-1', 'c', 'other-claim') } });
    const e1 = await new VolumeReader(pending.r).zoneRequirements(pod('q')).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ClaimNotBoundError);
    expect(pending.count.volume).toBe(0);
    // ...and a claim that says Bound to a volume bound elsewhere gets no zone from it, nor a message naming it.
    const liar = reads({ claims: { data: bound }, volumes: { 'pv-1': volumeIn('pv-1', 'c', 'other-claim') } });
    const e2 = await new VolumeReader(liar.r).zoneRequirements(pod('s')).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(ClaimNotBoundError);
    expect((e2 as Error).message).not.toContain('"c"');
  });

  it("takes a claim waiting for its node within its StorageClass's allowedTopologies", async () => {
    const { r } = reads({
      claims: { data: claim('fast') },
      classes: { fast: sc('fast', 'WaitForFirstConsumer', onlyB) },
    });
    const req = await new VolumeReader(r).zoneRequirements(pod('p'));
    expect(req).toEqual([{ source: 'StorageClass fast (claim data)', terms: [{ in: ['b'], notIn: [] }] }]);
  });

  it('holds a pod whose claim is missing, binds at once, names no class or a missing one', async () => {
    const cases: [V1PersistentVolumeClaim | undefined, string][] = [
      [undefined, 'does not exist'],
      [claim('now'), 'binds at once (volumeBindingMode Immediate)'],
      [claim(''), 'names no StorageClass'],
      [claim('gone'), 'its StorageClass gone does not exist'],
    ];
    for (const [c, says] of cases) {
      const { r } = reads({ claims: c ? { data: c } : {}, classes: { now: sc('now', 'Immediate') } });
      const err = await new VolumeReader(r).zoneRequirements(pod('p')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClaimNotBoundError);
      expect((err as Error).message).toContain(says);
    }
  });

  it('reads an unbound claim again every 5 s for half a minute, then less and less often, and at once when bound', async () => {
    const clock = { now: 0 };
    const claims: Record<string, V1PersistentVolumeClaim> = { data: claim('now') };
    const { r, count } = reads({ claims, classes: { now: sc('now', 'Immediate') } });
    const v = new VolumeReader(r, () => clock.now);
    const readsAt: number[] = [];
    for (clock.now = 0; clock.now <= 120_000; clock.now += 1_000) {
      const before = count.claim;
      await v.zoneRequirements(pod('p')).catch(() => undefined);
      if (count.claim > before) readsAt.push(clock.now / 1000);
    }
    expect(readsAt).toEqual([0, 5, 10, 15, 20, 25, 30, 40, 60, 100]);
    claims.data = claim('now', 'pv-1');
    clock.now = 160_000; // the next read due, the claim bound meanwhile
    expect(await v.zoneRequirements(pod('p'))).toEqual([]);
  });

  it('reads one StorageClass once for pods asking together', async () => {
    const { r, count } = reads({
      claims: { data: claim('fast') },
      classes: { fast: sc('fast', 'WaitForFirstConsumer', onlyB) },
    });
    const v = new VolumeReader(r);
    await Promise.all(['a', 'b', 'c', 'd'].map((n) => v.zoneRequirements(pod(n))));
    expect(count.storageClass).toBe(1);
  });

  it('without the right to read StorageClasses, leaves the zone open and says so once', async () => {
    const lines: string[] = [];
    const logger = createLogger('warn', { write: (l: string) => void lines.push(l) });
    const forbidden = Object.assign(new Error('forbidden'), { code: 403, body: '{"reason":"Forbidden"}' });
    const { r } = reads({ claims: { data: claim('fast') }, classError: forbidden });
    const v = new VolumeReader(r, Date.now, logger);
    expect(await v.zoneRequirements(pod('a'))).toEqual([]);
    expect(await v.zoneRequirements(pod('b'))).toEqual([]);
    expect(lines.filter((l) => l.includes('forbidden'))).toHaveLength(1);
  });

  it('asks again after a StorageClass read that failed otherwise', async () => {
    const { r, count } = reads({
      claims: { data: claim('fast') },
      classError: Object.assign(new Error('boom'), { code: 500 }),
    });
    const v = new VolumeReader(r);
    await expect(v.zoneRequirements(pod('a'))).rejects.toThrow('boom');
    await expect(v.zoneRequirements(pod('a'))).rejects.toThrow('boom');
    expect(count.storageClass).toBe(2);
  });
});
