// Locates (building on first use) a Helm 3 binary for the chart tests: `go install` from the Go module
// proxy into a cache outside the work tree, next to the testbed binaries, keyed by version, so a
// second run builds nothing. $IPP_HELM names an existing binary instead.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const HELM_VERSION = 'v3.18.0';

const log = (l: string) => process.stderr.write(`[helm] ${l}\n`);

function cacheDir(version: string): string {
  const base =
    process.env.IPP_TESTBED_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ipp-testbed');
  return join(base, `helm-${version}`);
}

// go install -v names each package as it compiles: one progress line every 50, messages as they come.
const BUILD = `
set -o pipefail
start=$(date +%s)
go install -v -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" 2>&1 |
  while IFS= read -r line; do
    case "$line" in
      *" "*) printf '[helm] %s\\n' "$line" >&2 ;;
      *) n=$((n + 1)); if (( n % 50 == 0 )); then printf '[helm] %d packages compiled (%ds)\\n' "$n" $(( $(date +%s) - start )) >&2; fi ;;
    esac
  done
`;

/** Absolute path of a helm v3 binary, built with `go install helm.sh/helm/v3/cmd/helm@<version>` when missing. */
export function ensureHelm(version: string = HELM_VERSION): string {
  if (process.env.IPP_HELM) return process.env.IPP_HELM;
  const dir = cacheDir(version);
  const bin = join(dir, 'helm');
  if (existsSync(join(dir, '.complete')) && existsSync(bin)) return bin;

  mkdirSync(dir, { recursive: true });
  // Build into a private GOBIN, then rename: a concurrent first use never sees half a binary.
  const tmp = mkdtempSync(join(dir, 'tmp-'));
  try {
    log(`building helm ${version} with go install into ${dir} (first use only; 1-5 min on 2 cores)`);
    const r = spawnSync('bash', ['-c', BUILD], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: {
        ...process.env,
        GOBIN: tmp,
        HELM_VERSION: version,
        CGO_ENABLED: '0',
        GOFLAGS: '-trimpath -buildvcs=false',
        GOTOOLCHAIN: process.env.GOTOOLCHAIN ?? 'local',
      },
    });
    if (r.error) throw new Error(`go install helm ${version}: ${r.error.message} (is Go installed?)`);
    if (r.status !== 0)
      throw new Error(`go install helm.sh/helm/v3/cmd/helm@${version} failed (exit ${r.status}); its output is above`);
    const built = join(tmp, 'helm');
    const v = spawnSync(built, ['version', '--short'], { encoding: 'utf8' });
    if (v.status !== 0) throw new Error(`the built helm does not run: ${v.stderr}`);
    renameSync(built, bin);
    writeFileSync(join(dir, '.complete'), v.stdout);
    log(`ready: ${v.stdout.trim()} at ${bin}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return bin;
}

/** Runs helm; returns stdout, or throws with helm's stderr. */
export function helm(args: string[], opts: { input?: string; cwd?: string } = {}): string {
  const r = spawnSync(ensureHelm(), args, {
    encoding: 'utf8',
    input: opts.input,
    cwd: opts.cwd,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`helm ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr.trim()}`);
  return r.stdout;
}
