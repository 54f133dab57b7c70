// The chart's class-taints policy on the real apiserver: an InstanceClass whose own user data drops
// ipp's taints is accepted with a Warning kubectl shows; one that keeps them gets none (T7).
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { render, type Manifest } from '../../testbed/chart.ts';
import { ensureHelm } from '../../testbed/helm.ts';
import { clients, eventually, suffix, type Clients } from '../support/cluster.ts';
import { deleteClasses, installCrds } from '../support/ipp.ts';

const KUBECTL = '/usr/lib/google-cloud-sdk/bin/kubectl';
const sfx = suffix();
const release = `ipp-taints-${sfx}`;

function apply(doc: object, ...extra: string[]): { stderr: string; status: number | null } {
  const r = spawnSync(KUBECTL, ['--kubeconfig', inject('kubeconfig'), 'create', ...extra, '-f', '-'], {
    input: stringify(doc),
    encoding: 'utf8',
  });
  return { stderr: r.stderr, status: r.status };
}

const awsClass = (name: string, userData: string) => ({
  apiVersion: 'ipp.dev/v1alpha1',
  kind: 'InstanceClass',
  metadata: { name },
  spec: { namespaces: ['*'], instanceTypes: ['m5.large'], aws: { ami: { id: 'ami-1' }, userData } },
});

describe("the chart's class-taints policy", () => {
  let c: Clients;
  let policy: Manifest[];
  const names = [`drops-${sfx}`, `keeps-${sfx}`, `probe-${sfx}`];

  beforeAll(async () => {
    ensureHelm();
    c = clients();
    await installCrds(c);
    policy = render({ clusterName: 'x', providers: ['simulated'] }, { release, namespace: `ipp-${sfx}` }).filter(
      (m) => m.metadata?.name === `${release}-class-taints`,
    );
    expect(policy.map((m) => m.kind).sort()).toEqual(['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
    const objects = KubernetesObjectApi.makeApiClient(c.kc);
    for (const m of policy) await objects.create(m as KubernetesObject);
    execFileSync(KUBECTL, ['version', '--client'], { stdio: 'ignore' });
  });
  afterAll(async () => {
    const objects = KubernetesObjectApi.makeApiClient(c.kc);
    for (const m of policy ?? []) await objects.delete(m as KubernetesObject).catch(() => {});
    await deleteClasses(c, names);
  });

  it('warns about user data without the taints, and not about user data that keeps them', async () => {
    await eventually('the policy to be in force', async () => {
      // A server-side dry run reaches admission every time (and stores nothing).
      const r = apply(awsClass(names[2]!, '#!/bin/bash\nnodeadm init'), '--dry-run=server');
      expect(r.stderr).toContain('Warning');
    });
    const drops = apply(awsClass(names[0]!, '#!/bin/bash\n/etc/eks/bootstrap.sh prod'));
    expect(drops.status).toBe(0);
    expect(drops.stderr).toContain("does not register the node with ipp's taints");
    const keeps = apply(
      awsClass(
        names[1]!,
        '#!/bin/bash\n/etc/eks/bootstrap.sh prod --kubelet-extra-args "{{ipp:register-with-taints}}"',
      ),
    );
    expect(keeps.status).toBe(0);
    expect(keeps.stderr).not.toContain('Warning');
  });
});
