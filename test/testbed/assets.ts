// Locates (building on first use) the testbed's binaries: see build.sh for what and where.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Directory with bin/{etcd,kube-apiserver,kube-scheduler,kube-controller-manager,kwok} and venv/. */
export function ensureAssets(): string {
  const r = spawnSync('bash', [join(here, 'build.sh')], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`test/testbed/build.sh failed (exit ${r.status}); its output is above`);
  const lines = r.stdout.trim().split('\n');
  return lines[lines.length - 1]!;
}
