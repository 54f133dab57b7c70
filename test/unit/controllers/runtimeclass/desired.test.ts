import type { V1RuntimeClass } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { InstanceClass } from '../../../../src/api/types.ts';
import {
  classOfRuntimeClass,
  desiredRuntimeClass,
  runtimeClassAction,
} from '../../../../src/controllers/runtimeclass/desired.ts';

const cls = (runtimeClass?: InstanceClass['spec']['runtimeClass'], uid = 'uid-1'): InstanceClass => ({
  metadata: { name: 'relay', uid },
  spec: { instanceTypes: ['m5.metal'], ...(runtimeClass ? { runtimeClass } : {}) },
});

/** What the apiserver returns for an object it stored. */
const stored = (rc: V1RuntimeClass, uid = 'rc-uid'): V1RuntimeClass => ({
  ...rc,
  metadata: { ...rc.metadata, uid, resourceVersion: '7' },
});

describe('desiredRuntimeClass', () => {
  it('is ipp-<class> with handler runc, the class toleration, and the class as owner', () => {
    expect(desiredRuntimeClass(cls())).toEqual({
      apiVersion: 'node.k8s.io/v1',
      kind: 'RuntimeClass',
      metadata: {
        name: 'ipp-relay',
        labels: { 'app.kubernetes.io/managed-by': 'ipp', 'ipp.dev/class': 'relay' },
        ownerReferences: [
          { apiVersion: 'ipp.dev/v1alpha1', kind: 'InstanceClass', name: 'relay', uid: 'uid-1', controller: true },
        ],
      },
      handler: 'runc',
      scheduling: {
        tolerations: [
          { key: 'ipp.dev/class', operator: 'Equal', value: 'relay', effect: 'NoSchedule' },
          { key: 'ipp.dev/class', operator: 'Equal', value: 'relay', effect: 'NoExecute' },
        ],
      },
    });
  });

  it("carries the class's handler and overhead", () => {
    const rc = desiredRuntimeClass(cls({ handler: 'kata', overhead: { podFixed: { cpu: '250m', memory: '160Mi' } } }));
    expect(rc.handler).toBe('kata');
    expect(rc.overhead).toEqual({ podFixed: { cpu: '250m', memory: '160Mi' } });
  });

  it('maps RuntimeClass names back to classes', () => {
    expect(classOfRuntimeClass('ipp-relay')).toBe('relay');
    expect(classOfRuntimeClass('ipp-')).toBeUndefined();
    expect(classOfRuntimeClass('kata')).toBeUndefined();
    expect(classOfRuntimeClass(undefined)).toBeUndefined();
  });
});

describe('runtimeClassAction', () => {
  it('creates what is missing and leaves what matches alone', () => {
    expect(runtimeClassAction('relay', cls(), undefined)).toEqual({ kind: 'create', body: desiredRuntimeClass(cls()) });
    expect(runtimeClassAction('relay', cls(), stored(desiredRuntimeClass(cls())))).toEqual({ kind: 'none' });
  });

  it('compares overheads by value, as the apiserver may rewrite the quantity', () => {
    const c = cls({ overhead: { podFixed: { cpu: '0.25', memory: '160Mi' } } });
    const back = stored(desiredRuntimeClass(c));
    back.overhead = { podFixed: { cpu: '250m', memory: '160Mi' } };
    expect(runtimeClassAction('relay', c, back)).toEqual({ kind: 'none' });
  });

  it('updates a changed toleration or overhead in place, keeping foreign labels and the resourceVersion', () => {
    const c = cls({ overhead: { podFixed: { cpu: '250m' } } });
    const edited = stored(desiredRuntimeClass(cls()));
    edited.metadata!.labels = { ...edited.metadata!.labels, team: 'x' };
    edited.scheduling = { tolerations: [] };
    const a = runtimeClassAction('relay', c, edited);
    expect(a.kind).toBe('update');
    if (a.kind !== 'update') return;
    expect(a.body.overhead).toEqual({ podFixed: { cpu: '250m' } });
    expect(a.body.scheduling).toEqual(desiredRuntimeClass(c).scheduling);
    expect(a.body.metadata).toMatchObject({ resourceVersion: '7', labels: { team: 'x', 'ipp.dev/class': 'relay' } });
  });

  it('recreates when the handler changes (immutable) or the owner is an earlier class of the same name', () => {
    const runc = stored(desiredRuntimeClass(cls()));
    expect(runtimeClassAction('relay', cls({ handler: 'kata' }), runc)).toMatchObject({
      kind: 'recreate',
      uid: 'rc-uid',
      body: { handler: 'kata' },
      why: 'handler changed from runc to kata',
    });
    expect(runtimeClassAction('relay', cls(undefined, 'uid-2'), runc)).toMatchObject({
      kind: 'recreate',
      body: { metadata: { ownerReferences: [{ uid: 'uid-2' }] } },
    });
  });

  it('deletes its own RuntimeClass once the class is confirmed gone, and nothing else', () => {
    expect(runtimeClassAction('relay', undefined, stored(desiredRuntimeClass(cls())))).toEqual({
      kind: 'delete',
      uid: 'rc-uid',
    });
    expect(runtimeClassAction('relay', undefined, undefined)).toEqual({ kind: 'none' });
    const foreign: V1RuntimeClass = { metadata: { name: 'ipp-relay', uid: 'f' }, handler: 'runc' };
    expect(runtimeClassAction('relay', undefined, foreign)).toEqual({ kind: 'none' });
  });

  it('never takes over a RuntimeClass someone else made, and says what to do', () => {
    const foreign: V1RuntimeClass = { metadata: { name: 'ipp-relay', uid: 'f' }, handler: 'kata' };
    const a = runtimeClassAction('relay', cls(), foreign);
    expect(a.kind).toBe('conflict');
    if (a.kind === 'conflict') expect(a.message).toMatch(/^RuntimeClass ipp-relay exists and was not made by ipp/);
  });
});
