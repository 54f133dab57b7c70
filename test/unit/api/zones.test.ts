// Which zones a pod's node affinity and bound volumes allow, and which instances may take it.
import type { V1PersistentVolume, V1Pod, V1StorageClass } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  allowedZones,
  claimsOf,
  classZones,
  podZoneRequirements,
  storageClassZoneRequirement,
  volumeZoneRequirement,
  zonesCompatible,
  zoneTerms,
  type ZoneRequirement,
} from '../../../src/api/zones.ts';
import { cls } from '../controllers/fixtures.ts';

const zoneIn = (key: string, ...values: string[]) => ({ key, operator: 'In', values });

const pv = (name: string, terms: object[]): V1PersistentVolume => ({
  metadata: { name },
  spec: { nodeAffinity: { required: { nodeSelectorTerms: terms } } },
});

describe('zoneTerms', () => {
  it('reads every zone key: well-known, beta, EBS and GCE PD CSI', () => {
    for (const key of [
      'topology.kubernetes.io/zone',
      'failure-domain.beta.kubernetes.io/zone',
      'topology.ebs.csi.aws.com/zone',
      'topology.gke.io/zone',
    ])
      expect(zoneTerms([{ matchExpressions: [zoneIn(key, 'a')] }]), key).toEqual([{ in: ['a'], notIn: [] }]);
  });

  it('intersects In within a term, collects NotIn, and DoesNotExist admits no ipp node', () => {
    expect(
      zoneTerms([
        {
          matchExpressions: [
            zoneIn('topology.kubernetes.io/zone', 'a', 'b'),
            zoneIn('topology.ebs.csi.aws.com/zone', 'b', 'c'),
            { key: 'topology.kubernetes.io/zone', operator: 'NotIn', values: ['x'] },
          ],
        },
        { matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'DoesNotExist' }] },
      ]),
    ).toEqual([
      { in: ['b'], notIn: ['x'] },
      { in: [], notIn: [] },
    ]);
  });

  it('leaves the zone open when any ORed term does not constrain it, or there are no terms', () => {
    expect(
      zoneTerms([
        { matchExpressions: [zoneIn('topology.kubernetes.io/zone', 'a')] },
        { matchExpressions: [zoneIn('kubernetes.io/hostname', 'h')] },
      ]),
    ).toBeUndefined();
    expect(zoneTerms([{ matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'Exists' }] }])).toBe(
      undefined,
    );
    expect(zoneTerms([])).toBeUndefined();
    expect(zoneTerms(undefined)).toBeUndefined();
  });
});

describe("a pod's own requirements", () => {
  it('reads its nodeSelector on a zone label and its required node affinity, not the preferred one', () => {
    const pod: V1Pod = {
      spec: {
        containers: [],
        nodeSelector: { 'topology.kubernetes.io/zone': 'a', disk: 'ssd' },
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchExpressions: [zoneIn('topology.kubernetes.io/zone', 'a', 'b')] }],
            },
            preferredDuringSchedulingIgnoredDuringExecution: [
              { weight: 1, preference: { matchExpressions: [zoneIn('topology.kubernetes.io/zone', 'c')] } },
            ],
          },
        },
      },
    };
    expect(podZoneRequirements(pod)).toEqual([
      { source: "the pod's nodeSelector", terms: [{ in: ['a'], notIn: [] }] },
      { source: "the pod's required node affinity", terms: [{ in: ['a', 'b'], notIn: [] }] },
    ]);
    expect(podZoneRequirements({ spec: { containers: [], nodeSelector: { disk: 'ssd' } } })).toEqual([]);
  });

  it('names the claims it mounts, its generic ephemeral volumes included', () => {
    const pod: V1Pod = {
      metadata: { name: 'db' },
      spec: {
        containers: [],
        volumes: [
          { name: 'data', persistentVolumeClaim: { claimName: 'pgdata' } },
          { name: 'scratch', ephemeral: { volumeClaimTemplate: { spec: {} } } },
          { name: 'cfg', configMap: { name: 'x' } },
        ],
      },
    };
    expect(claimsOf(pod)).toEqual(['pgdata', 'db-scratch']);
  });

  it("reads a volume's required node affinity, naming the volume and its claim", () => {
    expect(
      volumeZoneRequirement(pv('pv-1', [{ matchExpressions: [zoneIn('topology.kubernetes.io/zone', 'b')] }]), 'data'),
    ).toEqual({ source: 'PersistentVolume pv-1 (claim data)', terms: [{ in: ['b'], notIn: [] }] });
    expect(volumeZoneRequirement({ metadata: { name: 'nfs' }, spec: {} }, 'data')).toBeUndefined();
  });
});

describe("a StorageClass's allowedTopologies", () => {
  const sc = (allowedTopologies?: V1StorageClass['allowedTopologies']): V1StorageClass => ({
    metadata: { name: 'fast' },
    provisioner: 'ebs.csi.aws.com',
    volumeBindingMode: 'WaitForFirstConsumer',
    ...(allowedTopologies ? { allowedTopologies } : {}),
  });

  it('admits the zones its terms name (ORed), on any zone key', () => {
    const r = storageClassZoneRequirement(
      sc([
        { matchLabelExpressions: [{ key: 'topology.ebs.csi.aws.com/zone', values: ['b'] }] },
        { matchLabelExpressions: [{ key: 'topology.kubernetes.io/zone', values: ['c', 'd'] }] },
      ]),
      'data',
    );
    expect(r).toEqual({
      source: 'StorageClass fast (claim data)',
      terms: [
        { in: ['b'], notIn: [] },
        { in: ['c', 'd'], notIn: [] },
      ],
    });
    expect(allowedZones([r!], ['a', 'b', 'c'])?.zones).toEqual(['b', 'c']);
  });

  it('ANDs the expressions of one term', () => {
    const r = storageClassZoneRequirement(
      sc([
        {
          matchLabelExpressions: [
            { key: 'topology.kubernetes.io/zone', values: ['a', 'b'] },
            { key: 'topology.gke.io/zone', values: ['b', 'c'] },
          ],
        },
      ]),
      'data',
    );
    expect(r?.terms).toEqual([{ in: ['b'], notIn: [] }]);
  });

  it('requires nothing without allowedTopologies, or when a term leaves the zone open', () => {
    expect(storageClassZoneRequirement(sc(), 'data')).toBeUndefined();
    expect(storageClassZoneRequirement(sc([]), 'data')).toBeUndefined();
    expect(
      storageClassZoneRequirement(
        sc([
          { matchLabelExpressions: [{ key: 'topology.kubernetes.io/zone', values: ['a'] }] },
          { matchLabelExpressions: [{ key: 'kubernetes.io/hostname', values: ['n1'] }] },
        ]),
        'data',
      ),
    ).toBeUndefined();
  });
});

describe('allowedZones', () => {
  const volumeIn = (...zones: string[]): ZoneRequirement => ({
    source: 'PersistentVolume v (claim c)',
    terms: [{ in: zones, notIn: [] }],
  });

  it('is undefined when nothing constrains the pod', () => {
    expect(allowedZones([], ['a', 'b'])).toBeUndefined();
  });

  it("keeps the class's zones (in its order) that every requirement admits", () => {
    const affinity: ZoneRequirement = { source: 'affinity', terms: [{ notIn: ['c'] }] };
    expect(allowedZones([volumeIn('c', 'b'), affinity], ['a', 'b', 'c'])?.zones).toEqual(['b']);
    expect(allowedZones([volumeIn('c', 'a')], ['a', 'b', 'c'])?.zones).toEqual(['a', 'c']);
  });

  it('is empty, with the requirements in words, when the class offers none of the needed zones', () => {
    expect(allowedZones([volumeIn('c')], ['a', 'b'])).toEqual({
      zones: [],
      why: 'PersistentVolume v (claim c) needs zone c',
    });
  });

  it('narrows a class that leaves zones to the provider to the zones the requirements name', () => {
    expect(allowedZones([volumeIn('b', 'c'), { source: 'x', terms: [{ notIn: ['c'] }] }], undefined)?.zones).toEqual([
      'b',
    ]);
    // Conflicting requirements: nowhere.
    expect(allowedZones([volumeIn('a'), volumeIn('b')], undefined)?.zones).toEqual([]);
    // Only exclusions cannot be enumerated there: left to kube-scheduler.
    expect(allowedZones([{ source: 'x', terms: [{ notIn: ['c'] }] }], undefined)).toBeUndefined();
  });
});

describe('zonesCompatible', () => {
  it('admits any instance when the pod needs no zone', () => {
    expect(zonesCompatible(undefined, { launchedIn: 'a' })).toBe(true);
    expect(zonesCompatible(undefined, {})).toBe(true);
  });

  it('judges a launched instance by its zone, one still to launch by every zone it may launch in', () => {
    expect(zonesCompatible(['a'], { launchedIn: 'a', mayLaunchIn: ['a', 'b'] })).toBe(true);
    expect(zonesCompatible(['a'], { launchedIn: 'b' })).toBe(false);
    expect(zonesCompatible(['a', 'b'], { mayLaunchIn: ['b'] })).toBe(true);
    expect(zonesCompatible(['a'], { mayLaunchIn: ['a', 'b'] })).toBe(false);
    // Unknown zones (the provider chooses): never for a pod that needs one.
    expect(zonesCompatible(['a'], {})).toBe(false);
  });
});

describe('classZones', () => {
  it("is spec.zones, else the zones of the GCE instance groups, else the provider's choice", () => {
    expect(classZones(cls({ zones: ['a', 'b'] }))).toEqual(['a', 'b']);
    expect(
      classZones(
        cls({
          gce: {
            instanceGroups: [
              { zone: 'z1', name: 'g1' },
              { zone: 'z2', name: 'g2' },
              { zone: 'z1', name: 'g3' },
            ],
          },
        }),
      ),
    ).toEqual(['z1', 'z2']);
    expect(classZones(cls())).toBeUndefined();
  });
});
