// The chart's Grafana dashboard (a ConfigMap for the dashboard sidecar) as helm renders it: valid
// dashboard JSON whose every query reads only metrics src/metrics/metrics.ts defines, covering what an
// operator needs to see; and the PromQL scanner those checks (and the e2e one) rest on.
import { beforeAll, describe, expect, it } from 'vitest';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { Metrics } from '../../../src/metrics/metrics.ts';
import { one, render, type Manifest } from '../../testbed/chart.ts';
import { ensureHelm } from '../../testbed/helm.ts';
import { familiesOf, familyOf, metricNames } from '../../testbed/promql.ts';

interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type: string; uid: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: { expr: string; refId: string; datasource?: { uid: string } }[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: { list: { name: string; type: string; query?: unknown }[] };
  panels: Panel[];
}

const BASE = { clusterName: 'prod', providers: ['simulated'] };

function dashboardOf(ms: Manifest[]): { cm: V1ConfigMap; dashboard: Dashboard } {
  const cm = one<V1ConfigMap>(ms, 'ConfigMap', 'ipp-dashboard');
  return { cm, dashboard: JSON.parse(cm.data!['ipp.json']!) as Dashboard };
}

/** The metric families the controller defines (default process metrics included), by name → type. */
async function definedFamilies(): Promise<Map<string, string>> {
  return familiesOf(await new Metrics().registry.metrics());
}

beforeAll(() => {
  ensureHelm();
}, 15 * 60_000);

describe('metricNames (PromQL scanner)', () => {
  it('finds the metrics and nothing else: functions, keywords, labels, ranges, durations, variables', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (class, le) (rate(ipp_pod_pin_duration_seconds_bucket{class=~"$class", x="a}b"}[5m])))',
      ),
    ).toEqual(['ipp_pod_pin_duration_seconds_bucket']);
    expect(
      metricNames(
        'sum by (a) (x_total{e!~"|y"}) / ignoring (error) group_left () sum(y) > on (class) group_left max(z offset 1h) + 1e3 or vector(0)',
      ),
    ).toEqual(['x_total', 'y', 'z']);
    expect(metricNames('time() - last_seen > 900 and bool up unless absent(gone) * $__rate_interval')).toEqual([
      'gone',
      'last_seen',
      'up',
    ]);
    expect(metricNames('sum(rate(a[${__range}])) by (job) without_label')).toEqual(['a', 'without_label']);
  });

  it('resolves histogram series to their family, and nothing that is not declared', () => {
    const families = new Map([
      ['h_seconds', 'histogram'],
      ['c_total', 'counter'],
    ]);
    expect(familyOf('h_seconds_bucket', families)).toBe('h_seconds');
    expect(familyOf('h_seconds_count', families)).toBe('h_seconds');
    expect(familyOf('c_total', families)).toBe('c_total');
    expect(familyOf('c_total_bucket', families)).toBeUndefined();
    expect(familyOf('h_second_count', families)).toBeUndefined();
  });
});

describe('charts/ipp Grafana dashboard', { timeout: 60_000 }, () => {
  let dashboard: Dashboard;
  let cm: V1ConfigMap;
  beforeAll(() => {
    ({ cm, dashboard } = dashboardOf(render({ ...BASE, grafanaDashboard: { enabled: true } })));
  });

  it('is a ConfigMap for the Grafana sidecar only when enabled, in the namespace and with the labels asked for', () => {
    expect(render(BASE).filter((m) => m.kind === 'ConfigMap')).toEqual([]);
    expect(cm.metadata!.namespace).toBe('ipp-system');
    expect(cm.metadata!.labels).toMatchObject({ grafana_dashboard: '1', 'app.kubernetes.io/name': 'ipp' });
    const moved = dashboardOf(
      render({
        ...BASE,
        grafanaDashboard: {
          enabled: true,
          namespace: 'monitoring',
          labels: { grafana_dashboard: 'ipp' },
          annotations: { grafana_folder: 'Platform' },
        },
      }),
    ).cm;
    expect(moved.metadata!.namespace).toBe('monitoring');
    expect(moved.metadata!.labels!.grafana_dashboard).toBe('ipp');
    expect(moved.metadata!.annotations).toEqual({ grafana_folder: 'Platform' });
  });

  it('is dashboard JSON Grafana provisions: fixed uid, a Prometheus data source variable on every query', () => {
    expect(dashboard.uid).toBe('ipp-overview');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'job', 'class']);
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    const queries = dashboard.panels.filter((p) => p.type !== 'row');
    expect(queries.length).toBeGreaterThan(20);
    for (const p of queries) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.description, p.title).toBeTruthy();
      expect(p.targets!.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.datasource?.uid, p.title).toBe('${datasource}');
    }
  });

  it('lays panels out without overlap inside the 24-column grid', () => {
    const cells = new Map<string, string>();
    for (const p of dashboard.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          expect(cells.get(`${i},${j}`), `${p.title} overlaps`).toBeUndefined();
          cells.set(`${i},${j}`, p.title);
        }
      }
    }
  });

  it('queries only metrics src/metrics/metrics.ts defines', async () => {
    const families = await definedFamilies();
    const used = dashboard.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr)));
    expect(used.length).toBeGreaterThan(30);
    for (const name of used) expect(familyOf(name, families), `${name} is not defined`).toBeDefined();
  });

  it('shows what an operator asks about: instances, pending pods and time to pin, idle nodes, provider calls and errors, violations, leader, caches, work queues, webhook', () => {
    const used = new Set(dashboard.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr))));
    for (const name of [
      'ipp_instances',
      'ipp_pending_pods',
      'ipp_oldest_pending_pod_age_seconds',
      'ipp_pod_pin_duration_seconds_bucket',
      'ipp_idle_nodes',
      'ipp_node_idle_seconds',
      'ipp_provider_calls_total',
      'ipp_provider_call_duration_seconds_bucket',
      'ipp_leaked_instances_collected_total',
      'ipp_isolation_violations',
      'ipp_isolation_violations_total',
      'ipp_leader',
      'ipp_leader_transitions_total',
      'ipp_informer_synced',
      'ipp_workqueue_depth',
      'ipp_reconcile_total',
      'ipp_reconcile_errors_total',
      'ipp_webhook_requests_total',
      'ipp_webhook_request_duration_seconds_bucket',
    ]) {
      expect(used, name).toContain(name);
    }
  });

  it('is a real check: a misspelt metric in a query is caught', async () => {
    const families = await definedFamilies();
    expect(familyOf(metricNames('sum(ipp_instance{phase="Ready"})')[0]!, families)).toBeUndefined();
    expect(familyOf(metricNames('rate(ipp_pod_pin_duration_bucket[5m])')[0]!, families)).toBeUndefined();
  });

  it('the alert rules, too, read only metrics src/metrics/metrics.ts defines', async () => {
    const families = await definedFamilies();
    const pr = one<Manifest & { spec: { groups: { rules: { alert: string; expr: string }[] }[] } }>(
      render({ ...BASE, prometheusRule: { enabled: true } }),
      'PrometheusRule',
    );
    const rules = pr.spec.groups.flatMap((g) => g.rules);
    for (const r of rules) {
      const names = metricNames(r.expr);
      expect(names.length, r.alert).toBeGreaterThan(0);
      for (const name of names) expect(familyOf(name, families), `${r.alert}: ${name}`).toBeDefined();
    }
  });
});
