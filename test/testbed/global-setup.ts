// vitest globalSetup for the e2e project: one real control plane (and one moto) for the whole run;
// test files isolate themselves by namespace and by the names of the objects they create.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureAssets } from './assets.ts';
import { startControlPlane } from './controlplane.ts';
import { startMoto } from './moto.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
    testbedDir: string;
    assets: string;
    motoEndpoint: string;
    /** Kubeconfig paths of the non-admin identities, by name. */
    identities: Record<string, string>;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const assets = ensureAssets();
  const plane = await startControlPlane({ assets, log: (l) => process.stderr.write(`[testbed] ${l}\n`) });
  const logs = join(plane.dir, 'logs');
  mkdirSync(logs, { recursive: true });
  const moto = await startMoto(assets, logs).catch(async (e: unknown) => {
    await plane.stop();
    throw e;
  });
  process.stderr.write(`[testbed] up in ${Date.now() - started} ms; kubeconfig ${plane.kubeconfig}\n`);

  project.provide('kubeconfig', plane.kubeconfig);
  project.provide('testbedDir', plane.dir);
  project.provide('assets', assets);
  project.provide('motoEndpoint', moto.endpoint);
  project.provide(
    'identities',
    Object.fromEntries(Object.keys(plane.identities).map((n) => [n, plane.kubeconfigFor(n)])),
  );

  return async () => {
    await moto.stop();
    await plane.stop();
  };
}
