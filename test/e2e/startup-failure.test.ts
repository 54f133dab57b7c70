// A controller whose start fails half-way (here: kube-apiserver answers 503 to the SelfSubjectReview
// the webhook's startup asks, as it does while restarting) must exit, so that its Deployment starts
// it afresh; found by the chaos run, where such a replica stayed alive, unready, for good.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiProxy } from './support/api-proxy.ts';
import { useIppEnvironment } from './support/ipp.ts';

describe('a failed start', () => {
  const env = useIppEnvironment('startup');
  let proxy: ApiProxy;

  beforeAll(async () => {
    proxy = new ApiProxy(
      env.c.kc.getCurrentCluster()!.server,
      `${inject('testbedDir')}/pki/ca.crt`,
      inject('testbedDir'),
    );
    await proxy.start();
    return () => proxy.stop();
  });

  it('ends the process with exit code 1 instead of leaving it alive and never ready', async () => {
    proxy.refuse = (r) => (r.url.pathname.endsWith('/selfsubjectreviews') ? 503 : undefined);
    const kubeconfig = join(inject('testbedDir'), `startup-${env.cluster}.kubeconfig`);
    writeFileSync(kubeconfig, proxy.kubeconfig(env.c.kc).exportConfig(), { mode: 0o600 });
    const ipp = await env.start({ kubeconfig, waitReady: false });
    const exited = once(ipp.process, 'exit');
    const timeout = new Promise((r) => setTimeout(() => r('still running'), 60_000));
    expect(await Promise.race([exited.then(() => 'exited'), timeout]), ipp.logs()).toBe('exited');
    expect(ipp.process.exitCode).toBe(1);
    expect(ipp.logs()).toContain('controller failed');
  });
});
