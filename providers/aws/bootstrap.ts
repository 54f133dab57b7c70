// The node's bootstrap: user data for the EKS-optimized AL2023 AMI, whose nodeadm reads a NodeConfig
// from the MIME parts of the user data and joins the cluster. The kubelet registers the node with
// the class label, the Instance label and the class taint, so nothing else can land on it between
// registration and the pin. Pure: what a launch will carry, and what a node will register as.
import { parseAllDocuments, stringify } from 'yaml';
import type { NodeIdentity } from '../types.ts';

export interface EksCluster {
  clusterName: string;
  apiServerEndpoint: string;
  /** Base64 PEM bundle, as `aws eks describe-cluster --query cluster.certificateAuthority.data` prints it. */
  certificateAuthority: string;
  /** The cluster's service CIDR (kubernetesNetworkConfig.serviceIpv4Cidr), e.g. 10.100.0.0/16. */
  serviceCidr: string;
}

/** EC2 refuses user data above 16 KB (before base64). */
export const MAX_USER_DATA_BYTES = 16_384;

const BOUNDARY = '==ipp-boundary-7c1d==';
const NODE_CONFIG_TYPE = 'application/node.eks.aws';
/** nodeadm's run phase reads this directory after cloud-init's scripts ran (nodeadm-run.service). */
export const NODEADM_DROP_IN = '/etc/eks/nodeadm.d/90-ipp-instance.yaml';

// Node names, label values and taint values that reach a shell script are restricted to this.
const SAFE = /^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$/;

export function labelsFlag(labels: Record<string, string>): string {
  const pairs = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`);
  return `--node-labels=${pairs.join(',')}`;
}

export function taintsFlag(taints: NodeIdentity['taints']): string {
  return `--register-with-taints=${taints.map((t) => `${t.key}=${t.value}:${t.effect}`).join(',')}`;
}

export function kubeletFlags(node: NodeIdentity): string[] {
  const flags: string[] = [];
  if (Object.keys(node.labels).length) flags.push(labelsFlag(node.labels));
  if (node.taints.length) flags.push(taintsFlag(node.taints));
  return flags;
}

export function nodeConfig(eks: EksCluster, flags: string[]): string {
  return stringify({
    apiVersion: 'node.eks.aws/v1alpha1',
    kind: 'NodeConfig',
    spec: {
      cluster: {
        name: eks.clusterName,
        apiServerEndpoint: eks.apiServerEndpoint,
        certificateAuthority: eks.certificateAuthority,
        cidr: eks.serviceCidr,
      },
      kubelet: { flags },
    },
  });
}

interface Part {
  type: string;
  body: string;
}

function multipart(parts: Part[]): string {
  const body = parts
    .map((p) => `--${BOUNDARY}\nContent-Type: ${p.type}\n\n${p.body.endsWith('\n') ? p.body : `${p.body}\n`}`)
    .join('\n');
  return `MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="${BOUNDARY}"\n\n${body}\n--${BOUNDARY}--\n`;
}

/** User data of one instance: one NodeConfig with every label and the taint as kubelet flags. */
export function instanceUserData(eks: EksCluster, node: NodeIdentity): string {
  return multipart([{ type: NODE_CONFIG_TYPE, body: `---\n${nodeConfig(eks, kubeletFlags(node))}` }]);
}

/**
 * User data shared by the instances of one RunInstances (MaxCount > 1). EC2 gives every instance of
 * a request the same user data, so what differs per instance (the Instance label) is chosen at boot
 * from the instance's launch index (IMDS ami-launch-index, 0..n-1 in request order, documented by
 * EC2 for exactly this) and written as a nodeadm drop-in, which nodeadm merges by appending the
 * kubelet flags (--node-labels merge across occurrences). The taint and the class label are in the
 * shared NodeConfig, so a node whose script failed still registers tainted and is never pinned.
 */
export function groupUserData(eks: EksCluster, common: NodeIdentity, perIndex: Record<string, string>[]): string {
  const cases = perIndex.map((labels, i) => {
    for (const [k, v] of Object.entries(labels)) {
      if (!SAFE.test(k) || !SAFE.test(v))
        throw new Error(`label ${k}=${v} cannot be written into the boot script; use names of [A-Za-z0-9._/-]`);
    }
    return `  ${i}) labels='${labelsFlag(labels)}' ;;`;
  });
  const script = [
    '#!/bin/bash',
    "# ipp: instances launched together share this user data; the launch index picks this one's Instance.",
    'set -euo pipefail',
    'imds=http://169.254.169.254/latest',
    'token=$(curl -sf --retry 10 --retry-connrefused -X PUT "$imds/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300")',
    'index=$(curl -sf --retry 10 --retry-connrefused -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/ami-launch-index")',
    'case "$index" in',
    ...cases,
    '  *) echo "ipp: no Instance for launch index $index; the node stays tainted and unpinned" >&2; exit 1 ;;',
    'esac',
    `mkdir -p ${NODEADM_DROP_IN.slice(0, NODEADM_DROP_IN.lastIndexOf('/'))}`,
    `cat > ${NODEADM_DROP_IN} <<EOF`,
    '---',
    'apiVersion: node.eks.aws/v1alpha1',
    'kind: NodeConfig',
    'spec:',
    '  kubelet:',
    '    flags:',
    '      - "$labels"',
    'EOF',
  ].join('\n');
  return multipart([
    { type: NODE_CONFIG_TYPE, body: `---\n${nodeConfig(eks, kubeletFlags(common))}` },
    { type: 'text/x-shellscript; charset="us-ascii"', body: script },
  ]);
}

/**
 * The class's own user data (spec.aws.userData) replaces the generated bootstrap. Placeholders let
 * it still register the node the way ipp needs: {{ipp:class}}, {{ipp:instance}},
 * {{ipp:node-labels}} (a whole --node-labels=… flag) and {{ipp:register-with-taints}} (a whole flag).
 */
export function customUserData(template: string, node: NodeIdentity): string {
  const values: Record<string, string> = {
    'ipp:class': node.labels['ipp.dev/class'] ?? '',
    'ipp:instance': node.labels['ipp.dev/instance'] ?? '',
    'ipp:node-labels': labelsFlag(node.labels),
    'ipp:register-with-taints': taintsFlag(node.taints),
  };
  return template.replace(/\{\{(ipp:[a-z-]+)\}\}/g, (m, name: string) => values[name] ?? m);
}

/** Does the class's own user data differ per Instance (so one RunInstances cannot serve several)? */
export function customUserDataIsPerInstance(template: string): boolean {
  return /\{\{ipp:(instance|node-labels)\}\}/.test(template);
}

/** The parts of a MIME multipart user data document, or the whole text as one part. */
export function userDataParts(userData: string): Part[] {
  const m = /boundary="?([^"\n;]+)"?/.exec(userData);
  if (!userData.startsWith('MIME-Version') || !m) return [{ type: 'text/plain', body: userData }];
  const sep = `--${m[1]}`;
  return userData
    .split(sep)
    .slice(1)
    .filter((chunk) => !chunk.startsWith('--'))
    .map((chunk) => {
      const [head = '', ...rest] = chunk.replace(/^\n/, '').split('\n\n');
      const type = /Content-Type:\s*([^\n]+)/i.exec(head)?.[1]?.trim() ?? 'text/plain';
      return { type, body: rest.join('\n\n') };
    });
}

/**
 * What a kubelet booted from this user data registers as: the merged kubelet flags of every
 * NodeConfig, plus the drop-in the group script writes for `launchIndex`. Tests play the kubelet
 * with it; it is also the reference for what the generated bootstrap means.
 */
export function registration(
  userData: string,
  launchIndex = 0,
): { cluster: Record<string, unknown>; node: NodeIdentity } {
  const flags: string[] = [];
  let cluster: Record<string, unknown> = {};
  for (const part of userDataParts(userData)) {
    if (part.type.startsWith(NODE_CONFIG_TYPE)) {
      for (const doc of parseAllDocuments(part.body)) {
        const spec = (
          doc.toJS() as { spec?: { cluster?: Record<string, unknown>; kubelet?: { flags?: string[] } } } | null
        )?.spec;
        if (spec?.cluster) cluster = { ...cluster, ...spec.cluster };
        flags.push(...(spec?.kubelet?.flags ?? []));
      }
    } else if (part.type.startsWith('text/x-shellscript')) {
      const line = new RegExp(`^\\s*${launchIndex}\\) labels='([^']*)'`, 'm').exec(part.body);
      if (line?.[1]) flags.push(line[1]);
    }
  }
  const node: NodeIdentity = { labels: {}, taints: [] };
  for (const f of flags) {
    const [name, value = ''] = f.split(/=(.*)/s);
    if (name === '--node-labels') {
      for (const pair of value.split(',').filter(Boolean)) {
        const [k = '', v = ''] = pair.split('=');
        node.labels[k] = v;
      }
    } else if (name === '--register-with-taints') {
      // kubelet: the last occurrence wins.
      node.taints = value
        .split(',')
        .filter(Boolean)
        .map((t) => {
          const [kv = '', effect = 'NoSchedule'] = t.split(':');
          const [key = '', v = ''] = kv.split('=');
          return { key, value: v, effect: effect as NodeIdentity['taints'][number]['effect'] };
        });
    }
  }
  return { cluster, node };
}
