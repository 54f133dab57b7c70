import { describe, expect, it } from 'vitest';
import {
  customUserData,
  customUserDataIsPerInstance,
  groupUserData,
  instanceUserData,
  NODEADM_DROP_IN,
  registration,
  userDataParts,
} from '../../../../providers/aws/bootstrap.ts';

const eks = {
  clusterName: 'prod',
  apiServerEndpoint: 'https://ABC.gr7.us-east-1.eks.amazonaws.com',
  certificateAuthority: 'Q0E=',
  serviceCidr: '10.100.0.0/16',
};
const taint = { key: 'ipp.dev/class', value: 'mail', effect: 'NoSchedule' as const };
const node = { labels: { 'ipp.dev/class': 'mail', 'ipp.dev/instance': 'mail-x7k2p' }, taints: [taint] };

describe('instanceUserData', () => {
  it('is a MIME multipart with one nodeadm NodeConfig carrying the cluster and the kubelet flags', () => {
    const ud = instanceUserData(eks, node);
    expect(ud).toMatch(/^MIME-Version: 1.0\nContent-Type: multipart\/mixed; boundary="[^"]+"\n\n/);
    const parts = userDataParts(ud);
    expect(parts.map((p) => p.type)).toEqual(['application/node.eks.aws']);
    expect(parts[0]!.body).toContain('kind: NodeConfig');
    expect(ud).toContain('--node-labels=ipp.dev/class=mail,ipp.dev/instance=mail-x7k2p');
    expect(ud).toContain('--register-with-taints=ipp.dev/class=mail:NoSchedule');
    expect(ud.trimEnd().endsWith('--')).toBe(true);
  });

  it('registers the node with the class label, the Instance label and the class taint', () => {
    const r = registration(instanceUserData(eks, node));
    expect(r.node).toEqual(node);
    expect(r.cluster).toEqual({
      name: 'prod',
      apiServerEndpoint: eks.apiServerEndpoint,
      certificateAuthority: 'Q0E=',
      cidr: '10.100.0.0/16',
    });
  });
});

describe('groupUserData', () => {
  const common = { labels: { 'ipp.dev/class': 'mail' }, taints: [taint] };
  const ud = groupUserData(eks, common, [
    { 'ipp.dev/instance': 'mail-a' },
    { 'ipp.dev/instance': 'mail-b' },
    { 'ipp.dev/instance': 'mail-c' },
  ]);

  it('gives each launch index its own Instance label and every index the taint', () => {
    expect(registration(ud, 0).node).toEqual({
      labels: { 'ipp.dev/class': 'mail', 'ipp.dev/instance': 'mail-a' },
      taints: [taint],
    });
    expect(registration(ud, 2).node).toEqual({
      labels: { 'ipp.dev/class': 'mail', 'ipp.dev/instance': 'mail-c' },
      taints: [taint],
    });
  });

  it('an index outside the group still registers tainted, with the class label only (never pinned)', () => {
    expect(registration(ud, 7).node).toEqual(common);
  });

  it('reads the launch index from IMDSv2 and writes a nodeadm drop-in before nodeadm runs', () => {
    const script = userDataParts(ud).find((p) => p.type.startsWith('text/x-shellscript'))!.body;
    expect(script).toContain('meta-data/ami-launch-index');
    expect(script).toContain('X-aws-ec2-metadata-token');
    expect(script).toContain(`cat > ${NODEADM_DROP_IN}`);
    expect(script).toMatch(/^\s*1\) labels='--node-labels=ipp.dev\/instance=mail-b' ;;$/m);
  });

  it('refuses label values that could break out of the boot script', () => {
    expect(() => groupUserData(eks, common, [{ 'ipp.dev/instance': "x'; rm -rf /" }])).toThrow(
      /cannot be written into the boot script/,
    );
  });
});

describe('customUserData', () => {
  it('fills the placeholders and leaves everything else alone', () => {
    const t =
      '#!/bin/bash\necho ${HOME} {{ipp:instance}}\nkubelet {{ipp:node-labels}} {{ipp:register-with-taints}} {{ipp:unknown}}';
    expect(customUserData(t, node)).toBe(
      '#!/bin/bash\necho ${HOME} mail-x7k2p\nkubelet --node-labels=ipp.dev/class=mail,ipp.dev/instance=mail-x7k2p --register-with-taints=ipp.dev/class=mail:NoSchedule {{ipp:unknown}}',
    );
  });

  it('knows when the template differs per Instance', () => {
    expect(customUserDataIsPerInstance('x {{ipp:class}}')).toBe(false);
    expect(customUserDataIsPerInstance('x {{ipp:node-labels}}')).toBe(true);
    expect(customUserDataIsPerInstance('x {{ipp:instance}}')).toBe(true);
  });
});
