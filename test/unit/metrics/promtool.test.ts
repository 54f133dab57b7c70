// `promtool check metrics` (Prometheus' own linter, from Debian's package) on what /metrics serves,
// with every ipp metric populated, so naming, units, help texts and types are checked by the tool
// that Prometheus users trust rather than by our reading of the conventions.
import { beforeAll, describe, expect, it } from 'vitest';
import { startOpsServer } from '../../../src/health/server.ts';
import { createLogger } from '../../../src/log.ts';
import { Metrics } from '../../../src/metrics/metrics.ts';
import { checkMetrics, ensurePromtool } from '../../testbed/promtool.ts';

function populate(m: Metrics) {
  m.instances.set({ class: 'postfix', phase: 'Ready' }, 3);
  m.instances.set({ class: 'postfix', phase: 'Pending' }, 1);
  m.idleNodes.set({ class: 'postfix' }, 1);
  m.nodeIdleSeconds.set({ class: 'postfix', node: 'ip-10-0-0-1.ec2.internal' }, 42);
  m.pendingPods.set({ class: 'postfix' }, 1);
  m.podPinDuration.observe({ class: 'postfix', mode: 'pin' }, 95);
  m.podPinDuration.observe({ class: 'sandbox', mode: 'bind' }, 4000);
  m.instanceRegistrationDuration.observe({ class: 'postfix', provider: 'aws' }, 1300);
  m.providerCalls.inc({ provider: 'aws', operation: 'create', error: '' });
  m.providerCalls.inc({ provider: 'aws', operation: 'create', error: 'insufficient_capacity' });
  m.providerCallDuration.observe({ provider: 'aws', operation: 'create' }, 0.8);
  m.leakedInstancesCollected.inc({ provider: 'aws' });
  m.isolationViolationsTotal.inc({ class: 'postfix', node: 'ip-10-0-0-1.ec2.internal' });
  m.isolationViolations.set({ node: 'ip-10-0-0-1.ec2.internal' }, 1);
  m.workqueueDepth.set({ queue: 'pods' }, 7);
  m.reconcileErrors.inc({ controller: 'provisioning' });
  m.reconciles.inc({ controller: 'provisioning', result: 'success' });
  m.leader.set({ identity: 'ipp-controller-0' }, 1);
  m.informerLastEvent.set({ resource: 'pods' }, Date.now() / 1000);
  m.observeInformers([{ resource: 'pods', hasSynced: () => true }]);
  m.observeLeaseTransitions('ipp-controller', 3);
  m.oldestPendingPodAge.set({ class: 'postfix' }, 12.5);
  m.classTimeout.set({ class: 'postfix', timeout: 'registration' }, 1800);
  m.observeAdmission('mutate', 'allowed', 0.003);
}

describe('promtool check metrics', () => {
  beforeAll(() => {
    ensurePromtool(); // first use downloads Debian's package (~20 MB)
  }, 600_000);

  it('finds no problem in the /metrics exposition of a populated registry', async () => {
    const m = new Metrics();
    populate(m);
    const server = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      metrics: m,
      healthy: () => ({ ok: true }),
      ready: () => ({ ok: true }),
      logger: createLogger('silent'),
    });
    try {
      const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
      expect(text).toContain('ipp_pod_pin_duration_seconds_bucket{le="3600",class="sandbox",mode="bind"}');
      const result = checkMetrics(text);
      expect(result.problems).toBe('');
      expect(result.ok).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('is a real check: it flags a counter without _total and a non-base unit', () => {
    const bad = [
      '# HELP ipp_launches Launches.',
      '# TYPE ipp_launches counter',
      'ipp_launches 1',
      '# HELP ipp_boot_milliseconds Boot time.',
      '# TYPE ipp_boot_milliseconds gauge',
      'ipp_boot_milliseconds 5',
      '',
    ].join('\n');
    const result = checkMetrics(bad);
    expect(result.ok).toBe(false);
    expect(result.problems).toContain('ipp_launches');
    expect(result.problems).toContain('ipp_boot_milliseconds');
  });
});
