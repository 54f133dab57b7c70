// Renders charts/ipp with the real helm binary (test/testbed/helm.ts) and parses the manifests, for
// the chart's unit tests and for the RBAC e2e test.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { helm } from './helm.ts';

export const CHART = join(import.meta.dirname, '..', '..', 'charts', 'ipp');
/**
 * The Kubernetes version helm renders for (.Capabilities.KubeVersion). A helm built with plain
 * `go install` lacks the release build's ldflags and would otherwise claim v1.20.
 */
export const KUBE_VERSION = '1.33.0';

/** A manifest as rendered: any kind, so tests reach into fields with their own types. */
export type Manifest = KubernetesObject & { [k: string]: unknown };

export interface RenderOptions {
  release?: string;
  namespace?: string;
}

/** helm with a values file (not --set, so nested and list values keep their types). */
function withValues<T>(values: object, fn: (file: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'ipp-chart-'));
  try {
    const file = join(dir, 'values.json');
    writeFileSync(file, JSON.stringify(values));
    return fn(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function renderText(values: object, o: RenderOptions = {}): string {
  return withValues(values, (file) =>
    helm([
      'template',
      o.release ?? 'ipp',
      CHART,
      '--namespace',
      o.namespace ?? 'ipp-system',
      '--kube-version',
      KUBE_VERSION,
      '--values',
      file,
    ]),
  );
}

export function render(values: object, o: RenderOptions = {}): Manifest[] {
  const docs = parseAllDocuments(renderText(values, o));
  const out: Manifest[] = [];
  for (const d of docs) {
    if (d.errors.length) throw new Error(`rendered YAML does not parse: ${d.errors.map((e) => e.message).join('; ')}`);
    const obj = d.toJS() as Manifest | null;
    if (obj) out.push(obj);
  }
  return out;
}

export function lint(values: object): string {
  return withValues(values, (file) =>
    helm(['lint', '--strict', CHART, '--namespace', 'ipp-system', '--kube-version', KUBE_VERSION, '--values', file]),
  );
}

/** The one object of a kind (and name), or a failing lookup that lists what was rendered. */
export function one<T = Manifest>(ms: Manifest[], kind: string, name?: string): T {
  const found = ms.filter((m) => m.kind === kind && (name === undefined || m.metadata?.name === name));
  if (found.length !== 1) {
    throw new Error(
      `expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length} among ${ms.map((m) => `${m.kind}/${m.metadata?.name}`).join(', ')}`,
    );
  }
  return found[0] as T;
}

export const RBAC_KINDS = ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];
