import { describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import type { Instance } from '../../../src/api/types.ts';
import { enforcePod, keepOffIppNodes, nodeNamedBy, type EnforceContext } from '../../../src/webhook/enforce.ts';
import type { Decision } from '../../../src/webhook/admission.ts';
import { applyPatch, binding, create, node, nodes, pod, update } from './fixtures.ts';

const ctx: EnforceContext = {
  nodes: nodes(
    node('ipp-1', { 'ipp.dev/class': 'metal', 'ipp.dev/instance': 'i-1' }),
    node('shared-1', { pool: 'general' }),
  ),
  controllerUsernames: ['system:serviceaccount:ipp-system:ipp'],
};
const OFF = { key: 'ipp.dev/class', operator: 'DoesNotExist' };
const message = (d: Decision) => (d.allowed ? '(allowed)' : d.message);
const dsOwner = {
  ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: 'x', controller: true }],
};
const DS_CONTROLLER = 'system:serviceaccount:kube-system:daemon-set-controller';

function after(p: V1Pod, d: Decision): V1Pod {
  if (!d.allowed) throw new Error(`denied: ${d.message}`);
  return applyPatch(p, d.patch ?? []);
}
const requiredTerms = (p: V1Pod) =>
  p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;

describe('enforcePod (a): ordinary pods that tolerate the ipp taint are kept off ipp nodes', () => {
  it.each([
    ['tolerate everything', { operator: 'Exists' }],
    ['tolerate every NoSchedule taint', { operator: 'Exists', effect: 'NoSchedule' }],
    ['tolerate the ipp key, any value', { key: 'ipp.dev/class', operator: 'Exists' }],
    ['tolerate one class', { key: 'ipp.dev/class', operator: 'Equal', value: 'metal', effect: 'NoSchedule' }],
  ])('%s → required DoesNotExist affinity, tolerations untouched', (_what, toleration) => {
    const p = pod({ app: 'x' }, { tolerations: [{ key: 'gpu', operator: 'Exists' }, toleration] });
    const d = enforcePod(create(p), ctx);
    expect(d).toMatchObject({
      allowed: true,
      warnings: [expect.stringMatching(/ipp nodes are reserved for pods labelled ipp-class/)],
    });
    const out = after(p, d);
    expect(requiredTerms(out)).toEqual([{ matchExpressions: [OFF] }]);
    expect(out.spec?.tolerations).toEqual(p.spec?.tolerations);
  });

  it.each([
    ['no tolerations', undefined],
    [
      'other keys only',
      [
        { key: 'gpu', operator: 'Exists' },
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
      ],
    ],
    ['Equal with an empty key (tolerates nothing)', [{ operator: 'Equal', value: 'x' }]],
  ])('%s → nothing to do', (_what, tolerations) => {
    expect(enforcePod(create(pod({ app: 'x' }, tolerations ? { tolerations } : {})), ctx)).toEqual({ allowed: true });
  });

  it('adds the requirement to every nodeSelectorTerm, because terms are ORed', () => {
    const p = pod(
      { app: 'x' },
      {
        tolerations: [{ operator: 'Exists' }],
        affinity: {
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'zone', labelSelector: {} }],
          },
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] },
                { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n'] }] },
                { matchExpressions: [OFF] },
              ],
            },
            preferredDuringSchedulingIgnoredDuringExecution: [
              { weight: 1, preference: { matchExpressions: [{ key: 'ssd', operator: 'Exists' }] } },
            ],
          },
        },
      },
    );
    const out = after(p, enforcePod(create(p), ctx));
    expect(requiredTerms(out)).toEqual([
      { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }, OFF] },
      { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n'] }], matchExpressions: [OFF] },
      { matchExpressions: [OFF] },
    ]);
    expect(out.spec?.affinity?.podAntiAffinity).toEqual(p.spec?.affinity?.podAntiAffinity);
    expect(out.spec?.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution).toEqual(
      p.spec?.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution,
    );
    // idempotent under reinvocation
    expect(enforcePod(create(out), ctx)).toEqual({ allowed: true });
  });

  it('creates the missing levels of affinity one at a time', () => {
    expect(keepOffIppNodes({ containers: [], affinity: {} })).toEqual([
      {
        op: 'add',
        path: '/spec/affinity/nodeAffinity',
        value: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [OFF] }] } },
      },
    ]);
    expect(keepOffIppNodes({ containers: [], affinity: { nodeAffinity: {} } })).toEqual([
      {
        op: 'add',
        path: '/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution',
        value: { nodeSelectorTerms: [{ matchExpressions: [OFF] }] },
      },
    ]);
    expect(
      keepOffIppNodes({
        containers: [],
        affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } } },
      }),
    ).toEqual([
      {
        op: 'add',
        path: '/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms',
        value: [{ matchExpressions: [OFF] }],
      },
    ]);
  });

  it('exempts ipp pods, mirror pods from their own node, and DaemonSet pods made by the DaemonSet controller in trusted namespaces', () => {
    const tol = { tolerations: [{ operator: 'Exists' }] };
    const inKubeSystem = (username: string) => ({ userInfo: { username }, namespace: 'kube-system' });
    expect(enforcePod(create(pod({ 'ipp-class': 'metal' }, tol)), ctx)).toEqual({ allowed: true });
    expect(enforcePod(create(pod({}, tol, dsOwner), inKubeSystem(DS_CONTROLLER)), ctx)).toEqual({ allowed: true });
    expect(enforcePod(create(pod({}, tol, dsOwner), inKubeSystem('system:kube-controller-manager')), ctx)).toEqual({
      allowed: true,
    });
    const agents = { userInfo: { username: DS_CONTROLLER }, namespace: 'agents' };
    expect(enforcePod(create(pod({}, tol, dsOwner), agents), { ...ctx, daemonSetNamespaces: ['agents'] })).toEqual({
      allowed: true,
    });
    // Anyone with `edit` may create a DaemonSet in their namespace: its pods are kept off ipp nodes.
    expect(enforcePod(create(pod({}, tol, dsOwner), agents), ctx)).toMatchObject({
      allowed: true,
      patch: expect.any(Array),
    });
    const mirror = pod({}, { ...tol, nodeName: 'shared-1' }, { annotations: { 'kubernetes.io/config.mirror': 'h' } });
    expect(enforcePod(create(mirror, { userInfo: { username: 'system:node:shared-1' } }), ctx)).toEqual({
      allowed: true,
    });
  });

  it('does not take a forged DaemonSet owner or mirror annotation at its word', () => {
    const tol = { tolerations: [{ operator: 'Exists' }] };
    expect(enforcePod(create(pod({}, tol, dsOwner), { userInfo: { username: 'mallory' } }), ctx)).toMatchObject({
      allowed: true,
      patch: expect.any(Array),
    });
    const mirror = pod({}, { ...tol, nodeName: 'shared-1' }, { annotations: { 'kubernetes.io/config.mirror': 'h' } });
    expect(enforcePod(create(mirror, { userInfo: { username: 'mallory' } }), ctx)).toMatchObject({
      allowed: true,
      patch: expect.any(Array),
    });
    // A kubelet may only vouch for mirror pods on its own node.
    expect(enforcePod(create(mirror, { userInfo: { username: 'system:node:other' } }), ctx)).toMatchObject({
      patch: expect.any(Array),
    });
  });
});

describe('enforcePod (b): nobody but ipp places pods on ipp nodes', () => {
  it('denies spec.nodeName naming an ipp node, with what to do instead', () => {
    expect(message(enforcePod(create(pod({ app: 'x' }, { nodeName: 'ipp-1' })), ctx))).toBe(
      'node "ipp-1" is an ipp node, reserved for the pods ipp places there. Remove spec.nodeName and let the ' +
        'scheduler choose a node; for a dedicated node of your own, label the pod ipp-class=<class> instead.',
    );
    // even with the class label, or for a forged DaemonSet pod
    expect(enforcePod(create(pod({ 'ipp-class': 'metal' }, { nodeName: 'ipp-1' })), ctx).allowed).toBe(false);
    expect(
      enforcePod(create(pod({}, { nodeName: 'ipp-1' }, dsOwner), { userInfo: { username: 'mallory' } }), ctx).allowed,
    ).toBe(false);
  });

  it("allows shared and unknown nodes, the controller, real DaemonSet pods and the node's own mirror pods", () => {
    expect(enforcePod(create(pod({}, { nodeName: 'shared-1' })), ctx)).toEqual({ allowed: true });
    // Without a way to ask the apiserver (nodeExists), an unknown node is not judged on that ground.
    expect(enforcePod(create(pod({}, { nodeName: 'not-yet-registered' })), ctx)).toEqual({ allowed: true });
    expect(
      enforcePod(
        create(pod({}, { nodeName: 'ipp-1' }), { userInfo: { username: 'system:serviceaccount:ipp-system:ipp' } }),
        ctx,
      ).allowed,
    ).toBe(true);
    expect(
      enforcePod(
        create(pod({}, { nodeName: 'ipp-1' }, dsOwner), {
          userInfo: { username: DS_CONTROLLER },
          namespace: 'kube-system',
        }),
        ctx,
      ).allowed,
    ).toBe(true);
    expect(
      enforcePod(create(pod({}, { nodeName: 'ipp-1' }, dsOwner), { userInfo: { username: DS_CONTROLLER } }), ctx)
        .allowed,
    ).toBe(false);
    const mirror = pod({}, { nodeName: 'ipp-1' }, { annotations: { 'kubernetes.io/config.mirror': 'h' } });
    expect(enforcePod(create(mirror, { userInfo: { username: 'system:node:ipp-1' } }), ctx).allowed).toBe(true);
    expect(enforcePod(create(mirror, { userInfo: { username: 'system:node:shared-1' } }), ctx).allowed).toBe(false);
  });

  it('refuses a pod naming a node that does not exist (it could register later as an ipp node), except for trusted identities', () => {
    const facts: EnforceContext = {
      ...ctx,
      nodeExists: (n) => (n === 'flaky' ? undefined : n === 'ipp-1' || n === 'shared-1'),
    };
    expect(message(enforcePod(create(pod({}, { nodeName: 'future-1' })), facts))).toBe(
      'node "future-1" does not exist, and a pod may name only a node that has registered (a node registered later ' +
        'could be a dedicated ipp node). Remove spec.nodeName and let the scheduler choose.',
    );
    expect(enforcePod(create(pod({}, { nodeName: 'flaky' })), facts)).toMatchObject({
      allowed: false,
      code: 500,
      message: expect.stringContaining('could not check that node "flaky" exists'),
    });
    expect(enforcePod(create(pod({}, { nodeName: 'shared-1' })), facts)).toEqual({ allowed: true });
    const controller = { userInfo: { username: 'system:serviceaccount:ipp-system:ipp' } };
    expect(enforcePod(create(pod({}, { nodeName: 'future-1' }), controller), facts).allowed).toBe(true);
    const ds = { userInfo: { username: DS_CONTROLLER }, namespace: 'kube-system' };
    expect(enforcePod(create(pod({}, { nodeName: 'future-1' }, dsOwner), ds), facts).allowed).toBe(true);
  });

  it('denies direct bindings to ipp nodes through pods/binding and the legacy bindings resource', () => {
    for (const resource of ['pods', 'bindings'] as const) {
      expect(message(enforcePod(binding('web-1', 'ipp-1', 'rogue-scheduler', resource), ctx))).toMatch(
        /^node "ipp-1" is an ipp node, reserved for the pods ipp places there; "rogue-scheduler" may not bind pod "web-1" to it/,
      );
      expect(enforcePod(binding('web-1', 'ipp-1', 'system:kube-scheduler', resource), ctx).allowed).toBe(true);
      expect(enforcePod(binding('web-1', 'ipp-1', 'system:serviceaccount:ipp-system:ipp', resource), ctx).allowed).toBe(
        true,
      );
      expect(enforcePod(binding('web-1', 'shared-1', 'rogue-scheduler', resource), ctx).allowed).toBe(true);
    }
    expect(() =>
      enforcePod(
        create({ target: 'ipp-1' }, { kind: { group: '', version: 'v1', kind: 'Binding' }, subResource: 'binding' }),
        ctx,
      ),
    ).toThrow(TypeError);
  });

  it('refuses a binding to a node that does not exist (it could register later as an ipp node), except by a scheduler', () => {
    const facts: EnforceContext = {
      ...ctx,
      nodeExists: (n) => (n === 'flaky' ? undefined : n === 'ipp-1' || n === 'shared-1'),
    };
    const squat = (target: string, username: string) => binding('squat', target, username);
    expect(nodeNamedBy(squat('future-1', 'rogue-scheduler'))).toBe('future-1');
    expect(message(enforcePod(squat('future-1', 'rogue-scheduler'), facts))).toBe(
      'node "future-1" does not exist; "rogue-scheduler" may bind pod "squat" only to a node that has registered ' +
        '(a node registered later could be a dedicated ipp node).',
    );
    expect(enforcePod(squat('flaky', 'rogue-scheduler'), facts)).toMatchObject({ allowed: false, code: 500 });
    expect(enforcePod(squat('shared-1', 'rogue-scheduler'), facts)).toEqual({ allowed: true });
    expect(enforcePod(squat('future-1', 'system:kube-scheduler'), facts)).toEqual({ allowed: true });
  });

  it("names the node a request would put a pod on: a created pod's nodeName or a binding's target, nothing else", () => {
    expect(nodeNamedBy(create(pod({}, { nodeName: 'n-1' })))).toBe('n-1');
    expect(nodeNamedBy(create(pod({})))).toBeUndefined();
    expect(nodeNamedBy(update(pod({}, { nodeName: 'n-1' }), pod({}, { nodeName: 'n-1' })))).toBeUndefined();
    const legacy = create(
      { metadata: { name: 'p' }, target: { kind: 'Node', name: 'n-2' } },
      {
        kind: { group: '', version: 'v1', kind: 'Binding' },
        resource: { group: '', version: 'v1', resource: 'bindings' },
      },
    );
    expect(nodeNamedBy(legacy)).toBe('n-2');
  });

  it("lets the controller's own token evict only the pods it drains: of a class, or on an ipp node", () => {
    const CONTROLLER = 'system:serviceaccount:ipp-system:ipp';
    const cached = new Map<string, V1Pod>([
      ['team-a/relay', pod({ 'ipp-class': 'metal' })],
      ['team-a/stray', pod({}, { nodeName: 'ipp-1' })],
      ['team-a/web', pod({}, { nodeName: 'shared-1' })],
      ['kube-system/coredns', pod({}, { nodeName: 'shared-1' })],
    ]);
    const facts: EnforceContext = { ...ctx, pods: { get: (ns, name) => cached.get(`${ns}/${name}`) } };
    const eviction = (namespace: string, name: string, username = CONTROLLER) =>
      create(
        { metadata: { name, namespace } },
        {
          kind: { group: 'policy', version: 'v1', kind: 'Eviction' },
          resource: { group: '', version: 'v1', resource: 'pods' },
          subResource: 'eviction',
          namespace,
          name,
          userInfo: { username },
        },
      );
    expect(enforcePod(eviction('team-a', 'relay'), facts)).toEqual({ allowed: true });
    expect(enforcePod(eviction('team-a', 'stray'), facts)).toEqual({ allowed: true });
    expect(message(enforcePod(eviction('kube-system', 'coredns'), facts))).toMatch(
      /^ipp evicts only the pods it drains from its own nodes .*pod kube-system\/coredns is neither/,
    );
    expect(message(enforcePod(eviction('team-a', 'web'), facts))).toMatch(/pod team-a\/web is neither/);
    expect(message(enforcePod(eviction('team-a', 'unknown'), facts))).toMatch(/is not in ipp's cache/);
    // Anyone else's evictions are RBAC's and PodDisruptionBudgets' business.
    expect(enforcePod(eviction('kube-system', 'coredns', 'alice'), facts)).toEqual({ allowed: true });
  });

  it("lets the controller's own token bind only a pod of a class to the node of the Instance it claims", () => {
    const bind = (pod: string, target: string) => binding(pod, target, 'system:serviceaccount:ipp-system:ipp');
    const pods: Record<string, V1Pod> = {
      'team-a/tenant': pod({ 'ipp-class': 'metal' }, {}, { annotations: { 'ipp.dev/instance': 'i-1' } }),
      'team-a/other-instance': pod({ 'ipp-class': 'metal' }, {}, { annotations: { 'ipp.dev/instance': 'i-2' } }),
      'team-a/plain': pod({}),
    };
    const withPods: EnforceContext = { ...ctx, pods: { get: (ns, name) => pods[`${ns}/${name}`] } };
    expect(enforcePod(bind('tenant', 'ipp-1'), withPods)).toEqual({ allowed: true });
    for (const [p, node] of [
      ['plain', 'ipp-1'],
      ['plain', 'shared-1'],
      ['tenant', 'shared-1'],
      ['other-instance', 'ipp-1'],
      ['unknown', 'ipp-1'],
    ]) {
      expect(message(enforcePod(bind(p!, node!), withPods)), `${p} → ${node}`).toMatch(
        /^ipp binds only a pod labelled ipp-class to the node of the Instance it claims/,
      );
    }

    // A GKE pool's node carries the class, not the Instance: it is the claimed Instance's by providerID.
    const gke = { ...node('gke-pool-a1', { 'ipp.dev/class': 'metal' }), spec: { providerID: 'gce://p/z/vm-1' } };
    const instances: Record<string, Instance> = {
      'i-1': { metadata: { name: 'i-1' }, spec: { class: 'metal' }, status: { providerID: 'gce://p/z/vm-1' } },
      'i-2': { metadata: { name: 'i-2' }, spec: { class: 'metal' }, status: { providerID: 'gce://p/z/vm-2' } },
    };
    const onGke: EnforceContext = {
      ...withPods,
      nodes: nodes(gke, node('ipp-1', { 'ipp.dev/class': 'metal', 'ipp.dev/instance': 'i-2' })),
      instances: { get: (name) => instances[name] },
    };
    expect(enforcePod(bind('tenant', 'gke-pool-a1'), onGke)).toEqual({ allowed: true });
    expect(message(enforcePod(bind('other-instance', 'gke-pool-a1'), onGke))).toMatch(/^ipp binds only/);
    // Where the Instance is known, its providerID decides, not a label its node's kubelet may write.
    expect(message(enforcePod(bind('other-instance', 'ipp-1'), onGke))).toMatch(/^ipp binds only/);
  });
});

describe('enforcePod (c): the class of an existing pod is fixed', () => {
  const placed = pod({ 'ipp-class': 'metal' }, { nodeName: 'ipp-1' });
  const relabelled = (labels: Record<string, string> | undefined, from: V1Pod = placed): V1Pod => ({
    ...from,
    metadata: { ...from.metadata, ...(labels ? { labels } : { labels: undefined }) },
  });

  it('denies changing, removing or adding ipp-class, placed or not', () => {
    expect(message(enforcePod(update(relabelled({ 'ipp-class': 'other' }), placed), ctx))).toBe(
      'changing the label ipp-class from "metal" to "other" is not allowed on an existing pod (it already runs on node "ipp-1"): ' +
        "the class is fixed when the pod is created. Change the label in the workload's pod template, or delete the pod and create it again.",
    );
    expect(message(enforcePod(update(relabelled({ app: 'x' }), placed), ctx))).toMatch(
      /^removing the label ipp-class is not allowed/,
    );
    const gated = pod({ 'ipp-class': 'metal' }, { schedulingGates: [{ name: 'ipp.dev/provision' }] });
    expect(message(enforcePod(update(relabelled(undefined, gated), gated), ctx))).toMatch(
      /^removing the label ipp-class is not allowed on an existing pod: /,
    );
    const ordinary = pod({ app: 'x' }, { nodeName: 'shared-1' });
    expect(
      message(enforcePod(update(relabelled({ app: 'x', 'ipp-class': 'metal' }, ordinary), ordinary), ctx)),
    ).toMatch(/^adding the label ipp-class/);
  });

  it('allows other updates, and removing the label from a finished pod, never adding or changing it', () => {
    expect(enforcePod(update(relabelled({ 'ipp-class': 'metal', team: 'mail' }), placed), ctx)).toEqual({
      allowed: true,
    });
    const done = { ...placed, status: { phase: 'Succeeded' } };
    expect(enforcePod(update(relabelled(undefined, done), done), ctx)).toEqual({ allowed: true });
    expect(enforcePod(update(relabelled({ 'ipp-class': 'gpu' }, done), done), ctx).allowed).toBe(false);
    // An ordinary finished pod carrying a hand-written claim would become a claimer of the class.
    const ordinaryDone = {
      ...pod({ app: 'x' }, {}, { annotations: { 'ipp.dev/instance': 'metal-a' } }),
      status: { phase: 'Failed' },
    };
    expect(message(enforcePod(update(relabelled({ 'ipp-class': 'metal' }, ordinaryDone), ordinaryDone), ctx))).toMatch(
      /^adding the label ipp-class is not allowed on an existing pod/,
    );
  });

  it('denies adding an ipp-admitting toleration to an ordinary pod that is not scheduled yet', () => {
    const pending = pod({ app: 'x' });
    const widened = { ...pending, spec: { ...pending.spec!, tolerations: [{ operator: 'Exists' }] } };
    expect(message(enforcePod(update(widened, pending), ctx))).toMatch(
      /^adding a toleration for the ipp\.dev\/class taint \(or for every taint\) to a pod that is not scheduled yet/,
    );
    // already kept off, already placed, or already tolerating: nothing new to guard
    const keptOff = after(widened, enforcePod(create(widened), ctx));
    const pendingKeptOff = { ...keptOff, spec: { ...keptOff.spec!, tolerations: [] } };
    expect(enforcePod(update(keptOff, pendingKeptOff), ctx)).toEqual({ allowed: true });
    const running = pod({ app: 'x' }, { nodeName: 'shared-1' });
    expect(
      enforcePod(
        update({ ...running, spec: { ...running.spec!, tolerations: [{ operator: 'Exists' }] } }, running),
        ctx,
      ),
    ).toEqual({ allowed: true });
  });

  it('denies an opted-in pod a toleration of other classes added after creation; its own class and other keys are fine', () => {
    const own = [
      { key: 'ipp.dev/class', operator: 'Equal', value: 'metal', effect: 'NoSchedule' },
      { key: 'ipp.dev/class', operator: 'Equal', value: 'metal', effect: 'NoExecute' },
    ];
    const relay = pod({ 'ipp-class': 'metal' }, { tolerations: own, schedulingGates: [{ name: 'ipp.dev/provision' }] });
    const plus = (t: object) => ({ ...relay, spec: { ...relay.spec!, tolerations: [...own, t] } });
    for (const t of [
      { operator: 'Exists' },
      { key: 'ipp.dev/class', operator: 'Exists' },
      { key: 'ipp.dev/class', operator: 'Equal', value: 'gpu' },
    ])
      expect(message(enforcePod(update(plus(t), relay), ctx))).toMatch(
        /would let this pod of class "metal" tolerate the nodes of other InstanceClasses/,
      );
    // Placed already, the same: the toleration outlives the pin.
    const placedRelay = { ...relay, spec: { ...relay.spec!, nodeName: 'ipp-1' } };
    const placedPlus = {
      ...placedRelay,
      spec: { ...placedRelay.spec!, tolerations: [...own, { operator: 'Exists' }] },
    };
    expect(enforcePod(update(placedPlus, placedRelay), ctx).allowed).toBe(false);
    expect(enforcePod(update(plus({ key: 'gpu', operator: 'Exists' }), relay), ctx)).toEqual({ allowed: true });
    expect(enforcePod(update(plus({ key: 'ipp.dev/class', operator: 'Equal', value: 'metal' }), relay), ctx)).toEqual({
      allowed: true,
    });
    // What it was admitted with stays: an update that adds nothing is not judged again.
    const greedyOld = plus({ operator: 'Exists' });
    const relabelledOnly = { ...greedyOld, metadata: { ...greedyOld.metadata, annotations: { note: 'x' } } };
    expect(enforcePod(update(relabelledOnly, greedyOld), ctx)).toEqual({ allowed: true });
  });

  it('requires oldObject on UPDATE', () => {
    expect(() => enforcePod(create(placed, { operation: 'UPDATE' }), ctx)).toThrow(TypeError);
  });
});

describe('enforcePod: only ipp lifts its gate and records claims', () => {
  const CONTROLLER = 'system:serviceaccount:ipp-system:ipp';
  const gated = pod({ 'ipp-class': 'metal' }, { schedulingGates: [{ name: 'ipp.dev/provision' }] });
  const ungated = pod({ 'ipp-class': 'metal' }, { schedulingGates: [] });
  const claimed = (name: string) =>
    pod(
      { 'ipp-class': 'metal' },
      { schedulingGates: [{ name: 'ipp.dev/provision' }] },
      { annotations: { 'ipp.dev/instance': name } },
    );

  it('refuses lifting the gate by hand, allows it to the controller', () => {
    expect(message(enforcePod(update(ungated, gated), ctx))).toMatch(
      /scheduling gate ipp.dev\/provision is lifted by ipp/,
    );
    expect(enforcePod(update(ungated, gated, { userInfo: { username: CONTROLLER } }), ctx)).toEqual({ allowed: true });
  });

  it('refuses writing or changing the ipp.dev/instance claim by hand, allows it to the controller', () => {
    expect(message(enforcePod(update(claimed('theirs'), gated), ctx))).toMatch(/only ipp sets it/);
    expect(message(enforcePod(update(claimed('b'), claimed('a')), ctx))).toMatch(/only ipp sets it/);
    expect(enforcePod(update(claimed('a'), gated, { userInfo: { username: CONTROLLER } }), ctx)).toEqual({
      allowed: true,
    });
  });

  it('refuses writing the ipp.dev/pinned-at time by hand (it times a refusal of the pin)', () => {
    const late = pod({ 'ipp-class': 'metal' }, {}, { annotations: { 'ipp.dev/pinned-at': '2999-01-01T00:00:00Z' } });
    expect(message(enforcePod(update(late, ungated), ctx))).toMatch(/ipp.dev\/pinned-at records when ipp pinned/);
    expect(enforcePod(update(late, ungated, { userInfo: { username: CONTROLLER } }), ctx)).toEqual({ allowed: true });
  });
});
