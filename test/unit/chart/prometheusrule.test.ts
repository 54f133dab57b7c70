// The chart's PrometheusRule, rendered by the real helm and run by the real promtool: `promtool check
// rules` on the whole group, and `promtool test rules` per alert with input series that make it fire
// and series that must not (below its threshold, before its `for`, another label's values). The
// expectations name every label and annotation of each alert, so a changed expression, threshold,
// label or summary fails here. A last test renders the rules with every alert disabled and checks
// that each firing case then fails: no case passes by itself.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { one, render, type Manifest } from '../../testbed/chart.ts';
import { ensureHelm } from '../../testbed/helm.ts';
import { checkRules, ensurePromtool, testRules, type RuleFile } from '../../testbed/promtool.ts';

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: { summary: string; description: string };
}

/** An expected alert: its labels (severity added) and its summary as Prometheus renders it. */
interface Expect {
  labels: Record<string, string>;
  summary: string;
}

/** A promtool test group: series over time (one value per minute) and what fires when. */
interface Case {
  series: Record<string, string>;
  at: Record<string, Expect[]>;
}

const BASE = { clusterName: 'prod', providers: ['simulated'] };

function rulesOf(values: object): Rule[] {
  const pr = one<Manifest & { spec: RuleFile }>(render(values), 'PrometheusRule');
  return pr.spec.groups.flatMap((g) => g.rules as Rule[]);
}

const ruleFile = (rules: Rule[]): RuleFile => ({ groups: [{ name: 'ipp', rules }] });

/** The promtool test groups of one alert. */
function promtoolTests(alert: string, cases: Case[], rules: Rule[]): object[] {
  const rule = rules.find((r) => r.alert === alert);
  return cases.map((c) => ({
    interval: '1m',
    input_series: Object.entries(c.series).map(([series, values]) => ({ series, values })),
    alert_rule_test: Object.entries(c.at).map(([time, alerts]) => ({
      eval_time: time,
      alertname: alert,
      exp_alerts: alerts.map((a) => ({
        exp_labels: { ...a.labels, severity: rule?.labels.severity ?? 'missing' },
        exp_annotations: { summary: a.summary, description: rule?.annotations.description ?? 'missing' },
      })),
    })),
  }));
}

const A = 'pod="ipp-a"';
const B = 'pod="ipp-b"';

/** Every alert of the chart, with series that make it fire and series that must not. */
const CASES: Record<string, Case[]> = {
  IppIsolationViolation: [
    {
      // A violating pod present for two scrapes: the gauge.
      series: { [`ipp_isolation_violations{node="n1",${A}}`]: '0 0 1 1 0 0' },
      at: {
        '1m': [],
        '2m': [{ labels: { node: 'n1' }, summary: 'A pod that must not be there ran on ipp node n1.' }],
        '5m': [],
      },
    },
    {
      // One found and gone between scrapes: only the counter shows it, for the window (10m).
      series: { [`ipp_isolation_violations_total{class="web",node="n2",${A}}`]: '0 0 0 1x20' },
      at: {
        '2m': [],
        '4m': [{ labels: { node: 'n2' }, summary: 'A pod that must not be there ran on ipp node n2.' }],
        '12m': [{ labels: { node: 'n2' }, summary: 'A pod that must not be there ran on ipp node n2.' }],
        '16m': [],
      },
    },
    {
      // The counter's first sample already 1 (a restarted replica re-finding it): still reported.
      series: { [`ipp_isolation_violations_total{class="web",node="n3",${B}}`]: '_ _ _ 1x20' },
      at: {
        '4m': [{ labels: { node: 'n3' }, summary: 'A pod that must not be there ran on ipp node n3.' }],
        '16m': [],
      },
    },
  ],
  IppLeakedInstancesCollected: [
    {
      series: {
        [`ipp_leaked_instances_collected_total{provider="aws",${A}}`]: '0x30 1x100',
        [`ipp_leaked_instances_collected_total{provider="gce",${A}}`]: '0x130',
      },
      at: {
        '20m': [],
        '35m': [{ labels: { provider: 'aws' }, summary: 'ipp terminated leaked aws instances.' }],
        '100m': [],
      },
    },
    {
      // A series born at 1: the first collection after a restart.
      series: { [`ipp_leaked_instances_collected_total{provider="aws",${B}}`]: '_x10 1x100' },
      at: {
        '15m': [{ labels: { provider: 'aws' }, summary: 'ipp terminated leaked aws instances.' }],
        '80m': [],
      },
    },
  ],
  IppNodesRepaired: [
    {
      series: {
        [`ipp_node_repairs_total{class="metal",reason="NodeRepair",${A}}`]: '0x30 1x100',
        [`ipp_node_repairs_total{class="web",reason="NodeLost",${A}}`]: '0x130',
      },
      at: {
        '20m': [],
        '35m': [
          {
            labels: { class: 'metal', reason: 'NodeRepair' },
            summary: 'ipp replaced instances of class metal (NodeRepair).',
          },
        ],
        '100m': [],
      },
    },
    {
      // A series born at 1: the first repair after a restart.
      series: { [`ipp_node_repairs_total{class="web",reason="InstanceTerminated",${B}}`]: '_x10 1x100' },
      at: {
        '15m': [
          {
            labels: { class: 'web', reason: 'InstanceTerminated' },
            summary: 'ipp replaced instances of class web (InstanceTerminated).',
          },
        ],
        '80m': [],
      },
    },
  ],
  IppRepairSuspended: [
    {
      series: {
        // metal is suspended for 10 minutes on both replicas' view (only the leader sets it, a restarted one starts at 0).
        [`ipp_repair_suspended{class="metal",${A}}`]: '0 0 1x10 0x10',
        [`ipp_repair_suspended{class="metal",${B}}`]: '0x22',
        // web blinks suspended for 3 minutes: shorter than for.
        [`ipp_repair_suspended{class="web",${A}}`]: '0 1 1 1 0x20',
      },
      at: {
        '4m': [],
        '9m': [
          {
            labels: { class: 'metal' },
            summary: 'Repair of ipp class metal is suspended: too much of it looks dead at once.',
          },
        ],
        '15m': [],
      },
    },
  ],
  IppPodsPendingPastBoot: [
    {
      series: {
        // metal: boot may take 5m + 30m; web: 10m + 15m (defaults); broken: no thresholds at all.
        [`ipp_class_timeout_seconds{class="metal",timeout="launch",${A}}`]: '300x60',
        [`ipp_class_timeout_seconds{class="metal",timeout="registration",${A}}`]: '1800x60',
        [`ipp_class_timeout_seconds{class="metal",timeout="idle",${A}}`]: '600x60',
        [`ipp_class_timeout_seconds{class="web",timeout="launch",${A}}`]: '600x60',
        [`ipp_class_timeout_seconds{class="web",timeout="registration",${A}}`]: '900x60',
        [`ipp_oldest_pending_pod_age_seconds{class="metal",${A}}`]: '0+60x60',
        [`ipp_oldest_pending_pod_age_seconds{class="web",${A}}`]: '1600x60',
        [`ipp_oldest_pending_pod_age_seconds{class="broken",${A}}`]: '99999x60',
      },
      at: {
        '4m': [],
        // web's waiting pod passed web's 25m at once; for 5m.
        '10m': [{ labels: { class: 'web' }, summary: 'A pod of class web has waited 26m 40s for its instance.' }],
        // metal's passed 35m at 36m; still within for.
        '38m': [{ labels: { class: 'web' }, summary: 'A pod of class web has waited 26m 40s for its instance.' }],
        '45m': [
          { labels: { class: 'web' }, summary: 'A pod of class web has waited 26m 40s for its instance.' },
          { labels: { class: 'metal' }, summary: 'A pod of class metal has waited 45m 0s for its instance.' },
        ],
      },
    },
  ],
  IppInstanceIdlePastTimeout: [
    {
      series: {
        [`ipp_class_timeout_seconds{class="metal",timeout="idle",${A}}`]: '600x60',
        [`ipp_class_timeout_seconds{class="web",timeout="idle",${A}}`]: '3600x60',
        // Past 600 s + 300 s grace at 16m.
        [`ipp_node_idle_seconds{class="metal",node="n1",${A}}`]: '0+60x40',
        // Torn down at 14m, as it should be.
        [`ipp_node_idle_seconds{class="metal",node="n2",${A}}`]: '0+60x13',
        // Idle 30m, well within web's 1h.
        [`ipp_node_idle_seconds{class="web",node="n3",${A}}`]: '0+60x40',
      },
      at: {
        '18m': [],
        '25m': [
          {
            labels: { class: 'metal', node: 'n1' },
            summary: 'ipp node n1 of class metal has been idle for 25m 0s, past its idleTimeout.',
          },
        ],
      },
    },
  ],
  IppProviderInsufficientCapacity: [
    {
      series: {
        // aws: 6 of 10 launches per minute find no capacity; gce: 4 of 10.
        [`ipp_provider_calls_total{provider="aws",operation="create",error="insufficient_capacity",${A}}`]: '0+6x60',
        [`ipp_provider_calls_total{provider="aws",operation="create",error="",${A}}`]: '0+4x60',
        [`ipp_provider_calls_total{provider="aws",operation="get",error="",${A}}`]: '0+100x60',
        [`ipp_provider_calls_total{provider="gce",operation="create",error="insufficient_capacity",${A}}`]: '0+4x60',
        [`ipp_provider_calls_total{provider="gce",operation="create",error="",${A}}`]: '0+6x60',
      },
      at: {
        '10m': [],
        '35m': [{ labels: { provider: 'aws' }, summary: '60% of aws launches fail for lack of capacity.' }],
      },
    },
  ],
  IppProviderThrottled: [
    {
      series: {
        [`ipp_provider_calls_total{provider="aws",operation="create",error="throttled",${A}}`]: '0+2x60',
        [`ipp_provider_calls_total{provider="aws",operation="create",error="",${A}}`]: '0+8x60',
        [`ipp_provider_calls_total{provider="aws",operation="delete",error="throttled",${A}}`]: '0+1x60',
        [`ipp_provider_calls_total{provider="aws",operation="delete",error="",${A}}`]: '0+19x60',
      },
      at: {
        '10m': [],
        '35m': [
          { labels: { provider: 'aws', operation: 'create' }, summary: '20% of aws create calls are throttled.' },
        ],
      },
    },
  ],
  IppProviderErrors: [
    {
      series: {
        [`ipp_provider_calls_total{provider="aws",operation="create",error="other",${A}}`]: '0+1x60',
        [`ipp_provider_calls_total{provider="aws",operation="create",error="invalid_config",${A}}`]: '0+1x60',
        [`ipp_provider_calls_total{provider="aws",operation="create",error="insufficient_capacity",${A}}`]: '0+8x60',
        [`ipp_provider_calls_total{provider="aws",operation="create",error="",${A}}`]: '0+8x60',
        // Not found on get is routine (the instance is already gone); throttling has its own alert.
        [`ipp_provider_calls_total{provider="aws",operation="get",error="not_found",${A}}`]: '0+5x60',
        [`ipp_provider_calls_total{provider="aws",operation="get",error="throttled",${A}}`]: '0+5x60',
        [`ipp_provider_calls_total{provider="aws",operation="get",error="",${A}}`]: '0+5x60',
      },
      at: {
        '10m': [],
        '35m': [
          {
            labels: { provider: 'aws', operation: 'create', error: 'other' },
            summary: '5.556% of aws create calls fail with other.',
          },
          {
            labels: { provider: 'aws', operation: 'create', error: 'invalid_config' },
            summary: '5.556% of aws create calls fail with invalid_config.',
          },
        ],
      },
    },
  ],
  IppLeaderFlapping: [
    {
      // Both replicas read the same Lease count: 4 changes within the hour, then calm.
      series: {
        [`ipp_leader_transitions_total{lease="ipp-controller",${A}}`]: '5x70 6 7 8 9 9x100',
        [`ipp_leader_transitions_total{lease="ipp-controller",${B}}`]: '5x70 6 7 8 9 9x100',
      },
      at: {
        '60m': [],
        '80m': [
          { labels: { lease: 'ipp-controller' }, summary: 'The ipp leader Lease ipp-controller keeps changing hands.' },
        ],
        '140m': [],
      },
    },
    {
      // Three changes in an hour is the allowed maximum.
      series: { [`ipp_leader_transitions_total{lease="ipp-controller",${A}}`]: '5x70 6 7 8 8x100' },
      at: { '80m': [] },
    },
  ],
  IppNoLeader: [
    {
      series: {
        [`ipp_leader{identity="ipp-a",${A}}`]: '1 1 1 0x20',
        [`ipp_leader{identity="ipp-b",${B}}`]: '0x23',
      },
      at: { '6m': [], '10m': [{ labels: {}, summary: 'No ipp controller replica is leading.' }] },
    },
    {
      // Nothing scraped at all: the controller is gone.
      series: { 'up{job="other"}': '1x20' },
      at: { '3m': [], '10m': [{ labels: {}, summary: 'No ipp controller replica is leading.' }] },
    },
    {
      // A handover: b leads a minute after a stopped.
      series: {
        [`ipp_leader{identity="ipp-a",${A}}`]: '1 1 1 0x20',
        [`ipp_leader{identity="ipp-b",${B}}`]: '0 0 0 0 1x20',
      },
      at: { '10m': [] },
    },
  ],
  IppMultipleLeaders: [
    {
      series: {
        [`ipp_leader{identity="ipp-a",${A}}`]: '1x10',
        [`ipp_leader{identity="ipp-b",${B}}`]: '0 0 1x8',
      },
      at: { '3m': [], '5m': [{ labels: {}, summary: '2 ipp controller replicas believe they are leading.' }] },
    },
  ],
  IppInformerNotSynced: [
    {
      series: {
        [`ipp_informer_synced{resource="pods",${A}}`]: '0x20',
        [`ipp_informer_synced{resource="nodes",${A}}`]: '0 0 0 1x20',
      },
      at: {
        '8m': [],
        '15m': [
          {
            labels: { resource: 'pods', pod: 'ipp-a' },
            summary: 'The ipp pods cache has not completed its first list.',
          },
        ],
      },
    },
  ],
  IppInformerStalled: [
    {
      series: {
        // Unix time of the last event; promtool's clock starts at 0.
        [`ipp_informer_last_event_timestamp_seconds{resource="instanceclasses",${A}}`]: '0x40',
        [`ipp_informer_last_event_timestamp_seconds{resource="pods",${A}}`]: '0+60x40',
      },
      at: {
        '18m': [],
        '25m': [
          {
            labels: { resource: 'instanceclasses', pod: 'ipp-a' },
            summary: 'The ipp instanceclasses watch has been silent for 25m 0s.',
          },
        ],
      },
    },
  ],
  IppWebhookErrors: [
    {
      series: {
        [`ipp_webhook_requests_total{webhook="mutate",result="error",${A}}`]: '0+1x30',
        [`ipp_webhook_requests_total{webhook="mutate",result="allowed",${A}}`]: '0+40x30',
        [`ipp_webhook_requests_total{webhook="mutate",result="denied",${A}}`]: '0+9x30',
        [`ipp_webhook_requests_total{webhook="enforce",result="error",${A}}`]: '0x30',
        [`ipp_webhook_requests_total{webhook="enforce",result="allowed",${A}}`]: '0+100x30',
      },
      at: {
        '8m': [],
        '20m': [
          {
            labels: { webhook: 'mutate' },
            summary: '2% of ipp mutate admission reviews end in an error.',
          },
        ],
      },
    },
  ],
  IppWebhookSlow: [
    {
      series: {
        // mutate: every review between 1 s and 2.5 s; enforce: all under 100 ms.
        [`ipp_webhook_request_duration_seconds_bucket{webhook="mutate",le="0.1",${A}}`]: '0x30',
        [`ipp_webhook_request_duration_seconds_bucket{webhook="mutate",le="1",${A}}`]: '0x30',
        [`ipp_webhook_request_duration_seconds_bucket{webhook="mutate",le="2.5",${A}}`]: '0+10x30',
        [`ipp_webhook_request_duration_seconds_bucket{webhook="mutate",le="+Inf",${A}}`]: '0+10x30',
        [`ipp_webhook_request_duration_seconds_bucket{webhook="enforce",le="0.1",${A}}`]: '0+50x30',
        [`ipp_webhook_request_duration_seconds_bucket{webhook="enforce",le="1",${A}}`]: '0+50x30',
        [`ipp_webhook_request_duration_seconds_bucket{webhook="enforce",le="2.5",${A}}`]: '0+50x30',
        [`ipp_webhook_request_duration_seconds_bucket{webhook="enforce",le="+Inf",${A}}`]: '0+50x30',
      },
      at: {
        '8m': [],
        '20m': [{ labels: { webhook: 'mutate' }, summary: 'The ipp mutate webhook answers in 2.485s (p99).' }],
      },
    },
  ],
  IppReconcileErrors: [
    {
      series: {
        [`ipp_reconcile_errors_total{controller="provisioning",${A}}`]: '0+3x40',
        [`ipp_reconcile_total{controller="provisioning",result="error",${A}}`]: '0+3x40',
        [`ipp_reconcile_total{controller="provisioning",result="success",${A}}`]: '0+7x40',
        [`ipp_reconcile_errors_total{controller="instance",${A}}`]: '0+1x40',
        [`ipp_reconcile_total{controller="instance",result="error",${A}}`]: '0+1x40',
        [`ipp_reconcile_total{controller="instance",result="success",${A}}`]: '0+19x40',
      },
      at: {
        '10m': [],
        '30m': [{ labels: { controller: 'provisioning' }, summary: '30% of ipp provisioning reconciles fail.' }],
      },
    },
  ],
};

beforeAll(() => {
  ensureHelm();
  ensurePromtool();
}, 15 * 60_000);

describe('charts/ipp PrometheusRule', { timeout: 60_000 }, () => {
  let rules: Rule[];
  beforeAll(() => {
    rules = rulesOf({ ...BASE, prometheusRule: { enabled: true } });
  });

  it('is rendered only when enabled, with the labels Prometheus selects rules by', () => {
    expect(render(BASE).filter((m) => m.kind === 'PrometheusRule')).toEqual([]);
    const pr = one(
      render({ ...BASE, prometheusRule: { enabled: true, additionalLabels: { release: 'kube-prometheus-stack' } } }),
      'PrometheusRule',
    );
    expect(pr.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(pr.metadata!.namespace).toBe('ipp-system');
    expect(pr.metadata!.labels).toMatchObject({ release: 'kube-prometheus-stack', 'app.kubernetes.io/name': 'ipp' });
  });

  it('passes promtool check rules', () => {
    const r = checkRules(ruleFile(rules));
    expect(r.output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(r.ok).toBe(true);
  });

  it('has a promtool test for every alert, and a summary and a static description on each', () => {
    expect(rules.map((r) => r.alert).sort()).toEqual(Object.keys(CASES).sort());
    for (const r of rules) {
      expect(r.annotations.summary, r.alert).toBeTruthy();
      expect(r.annotations.description.length, r.alert).toBeGreaterThan(80);
      // Static: promtool compares it as is (Prometheus' templating is in the summary only).
      expect(r.annotations.description, r.alert).not.toContain('{{');
      expect(['critical', 'warning'], r.alert).toContain(r.labels.severity);
    }
  });

  it('documents every alert, with its severity, in docs/metrics.md', () => {
    const doc = readFileSync(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
    for (const r of rules) expect(doc, r.alert).toContain(`| \`${r.alert}\` | ${r.labels.severity} |`);
  });

  it.each(Object.keys(CASES))('%s fires exactly when it should (promtool test rules)', (alert) => {
    const r = testRules(ruleFile(rules), promtoolTests(alert, CASES[alert]!, rules));
    expect(r.output).toContain('SUCCESS');
    expect(r.ok).toBe(true);
  });

  it('takes per-rule overrides of for, severity, thresholds, extra alert labels, and turns single rules off', () => {
    const tuned = rulesOf({
      ...BASE,
      prometheusRule: {
        enabled: true,
        alertLabels: { team: 'platform' },
        rules: {
          IppPodsPendingPastBoot: { for: '30m', factor: 2 },
          IppProviderThrottled: { severity: 'critical', ratio: 0.3, window: '1h' },
          IppNoLeader: { enabled: false },
        },
      },
    });
    expect(tuned.map((r) => r.alert)).not.toContain('IppNoLeader');
    expect(tuned).toHaveLength(rules.length - 1);
    const pending = tuned.find((r) => r.alert === 'IppPodsPendingPastBoot')!;
    expect(pending.for).toBe('30m');
    expect(pending.expr).toContain('> 2 * (');
    expect(pending.labels).toEqual({ severity: 'warning', team: 'platform' });
    const throttled = tuned.find((r) => r.alert === 'IppProviderThrottled')!;
    expect(throttled.labels.severity).toBe('critical');
    expect(throttled.expr).toContain('[1h]');
    expect(throttled.expr).toContain('> 0.3');
    expect(throttled.for).toBe('15m'); // untouched fields keep their defaults
    expect(checkRules(ruleFile(tuned)).ok).toBe(true);

    // Under the raised threshold the same series no longer fire.
    const r = testRules(ruleFile(tuned), promtoolTests('IppProviderThrottled', CASES.IppProviderThrottled!, rules));
    expect(r.ok).toBe(false);
    expect(r.output).toContain('IppProviderThrottled');
  });

  it('refuses misspelt alerts, unknown fields and malformed durations and ratios (values.schema.json)', () => {
    const withRules = (rules: object) => () => render({ ...BASE, prometheusRule: { enabled: true, rules } });
    expect(withRules({ IppNoLeaders: { for: '5m' } })).toThrow(/IppNoLeaders/);
    expect(withRules({ IppNoLeader: { threshold: 2 } })).toThrow(/threshold/);
    expect(withRules({ IppNoLeader: { for: '5 minutes' } })).toThrow(/for/);
    expect(withRules({ IppProviderErrors: { ratio: 5 } })).toThrow(/ratio/);
    expect(withRules({ IppProviderErrors: { window: 15 } })).toThrow(/window/);
  });

  it('is a real check: with the rules gone, every case that expects an alert fails', () => {
    const off = Object.fromEntries(Object.keys(CASES).map((a) => [a, { enabled: false }]));
    const none = render({ ...BASE, prometheusRule: { enabled: true, rules: off } });
    expect(none.filter((m) => m.kind === 'PrometheusRule')).toEqual([]);
    const firing = Object.entries(CASES).flatMap(([alert, cases]) =>
      promtoolTests(
        alert,
        cases.filter((c) => Object.values(c.at).some((a) => a.length > 0)),
        rules,
      ),
    );
    const r = testRules(ruleFile([]), firing);
    expect(r.ok).toBe(false);
    for (const alert of Object.keys(CASES)) expect(r.output, alert).toContain(`alertname: ${alert}`);
  });
});
