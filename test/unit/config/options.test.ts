// parseOptions(): flags, their IPP_* environment fallbacks, defaults, and errors that name the flag.
import { CommanderError } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseOptions } from '../../../src/config/options.ts';

// commander prints its errors before throwing them (exitOverride); keep the test output clean.
beforeEach(() => {
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => {
  vi.restoreAllMocks();
});

const errorOf = (argv: string[], env: NodeJS.ProcessEnv = {}): CommanderError => {
  try {
    parseOptions(argv, env);
  } catch (e) {
    return e as CommanderError;
  }
  throw new Error('parseOptions did not throw');
};

describe('parseOptions', () => {
  it('applies the defaults', () => {
    const o = parseOptions(['--cluster-name', 'prod'], {});
    expect(o).toMatchObject({
      clusterName: 'prod',
      providers: ['aws'],
      placement: 'pin',
      namespace: 'ipp-system',
      leaderElect: true,
      leaderElectionId: 'ipp-controller',
      metricsPort: 8080,
      metricsHost: '0.0.0.0',
      logLevel: 'info',
      concurrency: 4,
      gcIntervalMs: 60_000,
      gcGracePeriodMs: 300_000,
      resyncMs: 30_000,
      simulatedNamespace: 'ipp-simulated-cloud',
      webhook: true,
      webhookPort: 9443,
      webhookCertMode: 'self',
      webhookSecret: 'ipp-webhook-tls',
      webhookService: 'ipp-webhook',
      webhookConfigName: 'ipp',
      eksClusterName: 'prod',
    });
    expect(o.kubeconfig).toBeUndefined();
    expect(o.webhookUrl).toBeUndefined();
    expect(o.awsRegion).toBeUndefined();
  });

  it('reads flags, with durations in Go notation', () => {
    const o = parseOptions(
      [
        '--cluster-name=prod',
        '--providers',
        'simulated, aws',
        '--placement=bind',
        '--no-leader-elect',
        '--no-webhook',
        '--gc-interval=1h30m',
        '--gc-grace-period',
        '90s',
        '--resync=500ms',
        '--metrics-port=0',
        '--concurrency=16',
        '--eks-cluster-name=prod-eks',
        '--log-level=debug',
      ],
      {},
    );
    expect(o).toMatchObject({
      providers: ['simulated', 'aws'],
      placement: 'bind',
      leaderElect: false,
      webhook: false,
      gcIntervalMs: 90 * 60_000,
      gcGracePeriodMs: 90_000,
      resyncMs: 500,
      metricsPort: 0,
      concurrency: 16,
      eksClusterName: 'prod-eks',
      logLevel: 'debug',
    });
  });

  it('falls back to the IPP_* (and Kubernetes downward-API) environment variables', () => {
    const o = parseOptions([], {
      IPP_CLUSTER_NAME: 'from-env',
      IPP_PROVIDERS: 'gce,simulated',
      IPP_PLACEMENT: 'bind',
      IPP_GC_INTERVAL: '2m',
      IPP_GC_GRACE_PERIOD: '10m',
      IPP_RESYNC: '1m',
      IPP_CONCURRENCY: '8',
      IPP_METRICS_PORT: '9090',
      IPP_NO_LEADER_ELECT: 'true',
      IPP_NO_WEBHOOK: 'true',
      POD_NAMESPACE: 'ops',
      POD_NAME: 'ipp-7d9f-abcde',
      IPP_AWS_ENDPOINT: 'http://localhost:5000',
      AWS_REGION: 'eu-west-1',
    });
    expect(o).toMatchObject({
      clusterName: 'from-env',
      providers: ['gce', 'simulated'],
      placement: 'bind',
      gcIntervalMs: 120_000,
      gcGracePeriodMs: 600_000,
      resyncMs: 60_000,
      concurrency: 8,
      metricsPort: 9090,
      leaderElect: false,
      webhook: false,
      namespace: 'ops',
      identity: 'ipp-7d9f-abcde',
      awsEndpoint: 'http://localhost:5000',
      awsRegion: 'eu-west-1',
    });
  });

  it('prefers a flag over its environment variable', () => {
    const o = parseOptions(['--cluster-name=flag', '--gc-interval=3m'], {
      IPP_CLUSTER_NAME: 'env',
      IPP_GC_INTERVAL: '9m',
    });
    expect(o.clusterName).toBe('flag');
    expect(o.gcIntervalMs).toBe(180_000);
  });

  it('reads the environment it is given, not process.env, and restores process.env', () => {
    const saved = process.env;
    vi.stubEnv('IPP_CLUSTER_NAME', 'from-process');
    try {
      expect(parseOptions([], { IPP_CLUSTER_NAME: 'given' }).clusterName).toBe('given');
      expect(errorOf([], {})).toBeInstanceOf(CommanderError);
      expect(process.env.IPP_CLUSTER_NAME).toBe('from-process');
    } finally {
      vi.unstubAllEnvs();
    }
    expect(process.env).toBe(saved);
  });

  it('requires --cluster-name', () => {
    const e = errorOf([], {});
    expect(e).toBeInstanceOf(CommanderError);
    expect(e.code).toBe('commander.missingMandatoryOptionValue');
    expect(e.message).toContain('--cluster-name');
  });

  it('rejects an unknown provider, naming the flag and the known ones', () => {
    const e = errorOf(['--cluster-name=prod', '--providers=aws,azure'], {});
    expect(e).toBeInstanceOf(CommanderError);
    expect(e.message).toContain('--providers');
    expect(e.message).toContain('unknown provider(s) azure');
    expect(e.message).toContain('simulated, aws, gce');
    expect(errorOf([], { IPP_CLUSTER_NAME: 'prod', IPP_PROVIDERS: 'openstack' }).message).toContain('--providers');
  });

  it('rejects an empty provider list', () => {
    const e = errorOf(['--cluster-name=prod', '--providers= , '], {});
    expect(e).toBeInstanceOf(CommanderError);
    expect(e.message).toContain('--providers');
  });

  it('rejects a malformed duration, naming the flag', () => {
    for (const [flag, value] of [
      ['--gc-interval', '5 minutes'],
      ['--gc-grace-period', '10'],
      ['--resync', '1d'],
    ] as const) {
      const e = errorOf(['--cluster-name=prod', `${flag}=${value}`], {});
      expect(e).toBeInstanceOf(CommanderError);
      expect(e.message).toContain(flag);
      expect(e.message).toContain(`"${value}" is not a duration`);
    }
    expect(errorOf([], { IPP_CLUSTER_NAME: 'prod', IPP_RESYNC: 'soon' }).message).toContain('--resync');
  });

  it('rejects a bad number, placement or log level, naming the flag', () => {
    expect(errorOf(['--cluster-name=prod', '--concurrency=-1'], {}).message).toContain('--concurrency');
    expect(errorOf(['--cluster-name=prod', '--metrics-port=80.5'], {}).message).toContain('--metrics-port');
    expect(errorOf(['--cluster-name=prod', '--placement=spread'], {}).message).toContain('--placement');
    expect(errorOf(['--cluster-name=prod', '--log-level=verbose'], {}).message).toContain('--log-level');
  });

  it('runs at least one reconcile at a time', () => {
    expect(parseOptions(['--cluster-name=prod', '--concurrency=0'], {}).concurrency).toBe(1);
  });
});
