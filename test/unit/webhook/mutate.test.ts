import { describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import { mutatePod, type MutateContext } from '../../../src/webhook/mutate.ts';
import type { Decision } from '../../../src/webhook/admission.ts';
import { applyPatch, classes, create, instanceClass, pod } from './fixtures.ts';

const pin: MutateContext = {
  mode: 'pin',
  classes: classes(instanceClass('metal'), instanceClass('restricted', ['team-b', 'team-c'])),
};
const bind: MutateContext = { ...pin, mode: 'bind' };
const tol = { key: 'ipp.dev/class', operator: 'Equal', value: 'metal', effect: 'NoSchedule' };
const noExecute = { ...tol, effect: 'NoExecute' };

function patched(p: V1Pod, d: Decision): V1Pod {
  if (!d.allowed) throw new Error(`denied: ${d.message}`);
  return applyPatch(p, d.patch ?? []);
}
const message = (d: Decision) => (d.allowed ? '(allowed)' : d.message);

describe('mutatePod, pin mode', () => {
  it('adds the gate and the class toleration to a pod that only has the label', () => {
    const p = pod({ 'ipp-class': 'metal' });
    const d = mutatePod(create(p), pin);
    expect(d).toEqual({
      allowed: true,
      patch: [
        { op: 'add', path: '/spec/schedulingGates', value: [{ name: 'ipp.dev/provision' }] },
        { op: 'add', path: '/spec/tolerations', value: [tol, noExecute] },
      ],
    });
    const out = patched(p, d);
    expect(out.spec?.schedulerName).toBe('default-scheduler');
    expect(out.spec?.nodeSelector).toBeUndefined();
  });

  it('appends to existing gates and tolerations instead of replacing them', () => {
    const p = pod(
      { 'ipp-class': 'metal' },
      {
        schedulingGates: [{ name: 'example.com/quota' }],
        tolerations: [
          { key: 'gpu', operator: 'Exists' },
          { key: 'ipp.dev/class', operator: 'Equal', value: 'metal', effect: 'NoSchedule' },
        ],
      },
    );
    const out = patched(p, mutatePod(create(p), pin));
    expect(out.spec?.schedulingGates).toEqual([{ name: 'example.com/quota' }, { name: 'ipp.dev/provision' }]);
    expect(out.spec?.tolerations).toEqual([...p.spec!.tolerations!, noExecute]);
  });

  it('refuses an opted-in pod tolerating the taints of other classes (it could land on their nodes)', () => {
    for (const t of [
      { key: 'ipp.dev/class', operator: 'Equal', value: 'other', effect: 'NoSchedule' },
      { key: 'ipp.dev/class', operator: 'Exists' },
      { operator: 'Exists' },
    ]) {
      const d = mutatePod(create(pod({ 'ipp-class': 'metal' }, { tolerations: [t] })), pin);
      expect(message(d)).toMatch(
        /which would admit it to nodes of other InstanceClasses than "metal"\. Remove the toleration/,
      );
    }
  });

  it('is idempotent: a reinvocation on its own output changes nothing', () => {
    const p = pod({ 'ipp-class': 'metal' }, { tolerations: [{ key: 'a', operator: 'Exists' }] });
    const once = patched(p, mutatePod(create(p), pin));
    expect(mutatePod(create(once), pin)).toEqual({ allowed: true });
    // A toleration written without operator means Equal: also counts as present.
    const implicit = pod(
      { 'ipp-class': 'metal' },
      {
        schedulingGates: [{ name: 'ipp.dev/provision' }],
        tolerations: [
          { key: 'ipp.dev/class', value: 'metal', effect: 'NoSchedule' },
          { key: 'ipp.dev/class', value: 'metal', effect: 'NoExecute' },
        ],
      },
    );
    expect(mutatePod(create(implicit), pin)).toEqual({ allowed: true });
  });

  it('handles generateName pods, named pods and dry-run requests alike', () => {
    const p = pod({ 'ipp-class': 'metal' });
    const base = mutatePod(create(p), pin);
    expect(mutatePod(create(p, { name: 'web-0' }), pin)).toEqual(base);
    expect(mutatePod(create(p, { dryRun: true }), pin)).toEqual(base);
    // namespace may only be in the request (CREATE before defaulting) or only on the object
    const restricted = pod({ 'ipp-class': 'restricted' }, {}, { namespace: 'team-b' });
    expect(mutatePod(create(restricted, { namespace: undefined }), pin).allowed).toBe(true);
  });

  it('drops an ipp.dev/instance claim a new pod brings along: only ipp decides the Instance', () => {
    const copied = pod({ 'ipp-class': 'metal' }, {}, { annotations: { 'ipp.dev/instance': 'someone-elses' } });
    const d = mutatePod(create(copied), pin);
    expect(d).toMatchObject({ allowed: true });
    expect((d as { patch: unknown[] }).patch).toContainEqual({
      op: 'remove',
      path: '/metadata/annotations/ipp.dev~1instance',
    });
  });

  it('drops an ipp.dev/pinned-at time a new pod brings along', () => {
    const copied = pod({ 'ipp-class': 'metal' }, {}, { annotations: { 'ipp.dev/pinned-at': '2999-01-01T00:00:00Z' } });
    expect((mutatePod(create(copied), pin) as { patch: unknown[] }).patch).toContainEqual({
      op: 'remove',
      path: '/metadata/annotations/ipp.dev~1pinned-at',
    });
  });

  it('leaves DaemonSet pods, mirror pods, unlabelled pods and non-CREATE requests alone', () => {
    const ds = pod(
      { 'ipp-class': 'metal' },
      {},
      { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: 'x', controller: true }] },
    );
    const dsController = { userInfo: { username: 'system:serviceaccount:kube-system:daemon-set-controller' } };
    expect(mutatePod(create(ds, { ...dsController, namespace: 'kube-system' }), pin)).toEqual({ allowed: true });
    expect(
      mutatePod(create(ds, { ...dsController, namespace: 'agents' }), { ...pin, daemonSetNamespaces: ['agents'] }),
    ).toEqual({ allowed: true });
    // A DaemonSet in a namespace the platform team did not list (anyone with `edit` may create one), or
    // a DaemonSet ownerReference written by anybody else: such a pod cannot have a node of its own.
    for (const d of [
      mutatePod(create(ds, dsController), pin),
      mutatePod(create(ds, { namespace: 'kube-system' }), pin),
    ])
      expect(message(d)).toBe(
        'pods of a DaemonSet cannot be labelled ipp-class: a DaemonSet runs one pod on each node, and ipp gives each ' +
          "labelled pod a node of its own. Remove ipp-class from the DaemonSet's pod template.",
      );
    const mirror = pod(
      { 'ipp-class': 'metal' },
      { nodeName: 'n1' },
      { annotations: { 'kubernetes.io/config.mirror': 'abc' } },
    );
    expect(mutatePod(create(mirror, { userInfo: { username: 'system:node:n1' } }), pin)).toEqual({ allowed: true });
    // The annotation alone, from anyone else, exempts nothing.
    expect(mutatePod(create(mirror), pin)).toMatchObject({ allowed: false });
    expect(mutatePod(create(pod(undefined)), pin)).toEqual({ allowed: true });
    expect(mutatePod(create(pod({ 'ipp-class': 'metal' }), { operation: 'UPDATE' }), pin)).toEqual({ allowed: true });
    expect(
      mutatePod(create({}, { kind: { group: '', version: 'v1', kind: 'Binding' }, subResource: 'binding' }), pin),
    ).toEqual({ allowed: true });
    // A ReplicaSet owner is not a DaemonSet, nor is a DaemonSet reference that is not the controller.
    const rs = pod(
      { 'ipp-class': 'metal' },
      {},
      { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'y', controller: true }] },
    );
    expect(mutatePod(create(rs), pin)).toMatchObject({ allowed: true, patch: expect.any(Array) });
    const notController = pod(
      { 'ipp-class': 'metal' },
      {},
      { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'a', uid: 'z' }] },
    );
    expect(mutatePod(create(notController), pin)).toMatchObject({ patch: expect.any(Array) });
  });

  it('denies an unknown class and an empty label, saying what to do', () => {
    const d = mutatePod(create(pod({ 'ipp-class': 'gpu' })), pin);
    expect(d).toMatchObject({ allowed: false, code: 403 });
    expect(message(d)).toBe(
      'InstanceClass "gpu" does not exist. Set the label ipp-class to an existing class (kubectl get instanceclasses), or ask your cluster admin to create "gpu".',
    );
    expect(message(mutatePod(create(pod({ 'ipp-class': '' })), pin))).toMatch(
      /^the label ipp-class is empty\. Set it to the name of an InstanceClass/,
    );
  });

  it('denies a namespace the class does not list, and allows the ones it does', () => {
    const d = mutatePod(create(pod({ 'ipp-class': 'restricted' })), pin);
    expect(message(d)).toBe(
      // Not which namespaces may: that is not the tenant's to learn.
      'InstanceClass "restricted" does not allow pods in namespace "team-a". ' +
        'Use a class that allows this namespace, or ask your cluster admin to add "team-a" to spec.namespaces of "restricted".',
    );
    expect(mutatePod(create(pod({ 'ipp-class': 'restricted' }), { namespace: 'team-c' }), pin).allowed).toBe(true);
    // "*" means every namespace; an empty or missing list (a class stored before the CRD required it) means none.
    const open = { ...pin, classes: classes(instanceClass('open', ['*'])) };
    expect(mutatePod(create(pod({ 'ipp-class': 'open' }), { namespace: 'anything' }), open).allowed).toBe(true);
    for (const namespaces of [[], undefined]) {
      const closed = {
        ...pin,
        classes: classes({ metadata: { name: 'closed' }, spec: { instanceTypes: ['x'], namespaces } }),
      };
      expect(message(mutatePod(create(pod({ 'ipp-class': 'closed' })), closed))).toBe(
        'InstanceClass "closed" lists no namespaces, so no namespace may use it. Ask your cluster admin to set ' +
          'spec.namespaces of "closed" to the namespaces that may use it, or to ["*"] for every namespace.',
      );
    }
  });

  it('denies nodeName and foreign schedulers; accepts the default scheduler however it is spelled', () => {
    expect(message(mutatePod(create(pod({ 'ipp-class': 'metal' }, { nodeName: 'n1' })), pin))).toMatch(
      /^spec\.nodeName is set to "n1", but ipp gives a pod labelled ipp-class its own dedicated node\. Remove spec\.nodeName/,
    );
    expect(message(mutatePod(create(pod({ 'ipp-class': 'metal' }, { schedulerName: 'volcano' })), pin))).toMatch(
      /^spec\.schedulerName is "volcano", but ipp places pods labelled ipp-class\. Remove spec\.schedulerName/,
    );
    expect(mutatePod(create(pod({ 'ipp-class': 'metal' }, { schedulerName: undefined })), pin).allowed).toBe(true);
    expect(mutatePod(create(pod({ 'ipp-class': 'metal' }, { schedulerName: '' })), pin).allowed).toBe(true);
    // In pin mode nobody would bind a pod waiting for scheduler "ipp".
    expect(message(mutatePod(create(pod({ 'ipp-class': 'metal' }, { schedulerName: 'ipp' })), pin))).toMatch(
      /only used when ipp runs in bind placement mode/,
    );
  });

  it('checks the class before anything else, so the first fix the user is told about is the label', () => {
    expect(
      message(mutatePod(create(pod({ 'ipp-class': 'gpu' }, { nodeName: 'n1', schedulerName: 'x' })), pin)),
    ).toMatch(/^InstanceClass "gpu" does not exist/);
  });

  it('answers garbage in the pod with a TypeError (the server turns it into a denial), never a wrong patch', () => {
    expect(() => mutatePod(create(pod({ 'ipp-class': 'metal' }, { tolerations: 'all' as never })), pin)).toThrow(
      TypeError,
    );
    expect(() => mutatePod(create(pod({ 'ipp-class': 'metal' }, { schedulingGates: [1] as never })), pin)).toThrow(
      TypeError,
    );
    expect(() => mutatePod(create({ metadata: { labels: { 'ipp-class': 'metal' } } }), pin)).toThrow(TypeError);
    expect(() => mutatePod(create('pod'), pin)).toThrow(TypeError);
    // Labels of the wrong shape are no label at all.
    expect(mutatePod(create({ metadata: { labels: 'ipp-class=metal' }, spec: {} }), pin)).toEqual({ allowed: true });
  });
});

describe('mutatePod, bind mode', () => {
  it('sets schedulerName ipp instead of the gate, plus the toleration', () => {
    const p = pod({ 'ipp-class': 'metal' });
    const d = mutatePod(create(p), bind);
    expect(d).toEqual({
      allowed: true,
      patch: [
        { op: 'add', path: '/spec/schedulerName', value: 'ipp' },
        { op: 'add', path: '/spec/tolerations', value: [tol, noExecute] },
      ],
    });
    const out = patched(p, d);
    expect(out.spec?.schedulingGates).toBeUndefined();
    expect(mutatePod(create(out), bind)).toEqual({ allowed: true });
  });

  it('accepts a pod that already asks for the ipp scheduler and still denies others', () => {
    expect(mutatePod(create(pod({ 'ipp-class': 'metal' }, { schedulerName: 'ipp' })), bind)).toEqual({
      allowed: true,
      patch: [{ op: 'add', path: '/spec/tolerations', value: [tol, noExecute] }],
    });
    expect(mutatePod(create(pod({ 'ipp-class': 'metal' }, { schedulerName: 'volcano' })), bind).allowed).toBe(false);
  });
});

describe('mutatePod, opt-in by runtimeClassName ipp-<class>', () => {
  it('labels a pod that names the RuntimeClass, and gates it like a labelled one', () => {
    // As the RuntimeClass admission plugin hands it over: the class toleration is already there.
    const p = pod({ app: 'relay' }, { runtimeClassName: 'ipp-metal', tolerations: [tol] });
    const out = patched(p, mutatePod(create(p), pin));
    expect(out.metadata?.labels).toEqual({ app: 'relay', 'ipp-class': 'metal' });
    expect(out.spec?.schedulingGates).toEqual([{ name: 'ipp.dev/provision' }]);
    // The RuntimeClass brought the NoSchedule toleration; ipp adds the NoExecute one.
    expect(out.spec?.tolerations).toEqual([tol, { ...tol, effect: 'NoExecute' }]);
    // Reinvoked on its own output it is a labelled pod like any other: nothing more to do.
    expect(mutatePod(create(out), pin)).toEqual({ allowed: true });
  });

  it('creates the labels map when the pod has none, and hands the pod to the ipp scheduler in bind mode', () => {
    const p = pod(undefined, { runtimeClassName: 'ipp-metal' });
    const out = patched(p, mutatePod(create(p), bind));
    expect(out.metadata?.labels).toEqual({ 'ipp-class': 'metal' });
    expect(out.spec?.schedulerName).toBe('ipp');
    expect(out.spec?.tolerations).toEqual([tol, { ...tol, effect: 'NoExecute' }]);
  });

  it('accepts label and RuntimeClass naming the same class, and refuses them naming different classes', () => {
    const both = pod({ 'ipp-class': 'metal' }, { runtimeClassName: 'ipp-metal' });
    const out = patched(both, mutatePod(create(both), pin));
    expect(out.metadata?.labels).toEqual({ 'ipp-class': 'metal' });
    expect(out.spec?.schedulingGates).toEqual([{ name: 'ipp.dev/provision' }]);

    const disagree = pod({ 'ipp-class': 'metal' }, { runtimeClassName: 'ipp-restricted' });
    expect(message(mutatePod(create(disagree), pin))).toBe(
      'the label ipp-class names InstanceClass "metal" but runtimeClassName ipp-restricted names InstanceClass ' +
        '"restricted". Make both name the same class, or keep only one of them.',
    );
  });

  it('leaves pods with other RuntimeClasses alone, and refuses an ipp-* RuntimeClass without its class', () => {
    const kata = pod(undefined, { runtimeClassName: 'kata' });
    expect(mutatePod(create(kata), pin)).toEqual({ allowed: true });
    const orphan = pod(undefined, { runtimeClassName: 'ipp-gone' });
    expect(message(mutatePod(create(orphan), pin))).toMatch(
      /^runtimeClassName ipp-gone stands for InstanceClass "gone", which does not exist/,
    );
  });

  it("applies the class's namespace and placement rules, naming the RuntimeClass in the message", () => {
    const elsewhere = pod(undefined, { runtimeClassName: 'ipp-restricted' });
    expect(message(mutatePod(create(elsewhere, { namespace: 'team-a' }), pin))).toMatch(
      /^InstanceClass "restricted" does not allow pods in namespace "team-a"/,
    );
    const placed = pod(undefined, { runtimeClassName: 'ipp-metal', nodeName: 'n1' });
    expect(message(mutatePod(create(placed), pin))).toBe(
      'spec.nodeName is set to "n1", but ipp gives a pod with runtimeClassName ipp-metal its own dedicated node. ' +
        'Remove spec.nodeName, or remove runtimeClassName ipp-metal to place the pod yourself.',
    );
  });
});
