// Locates (installing on first use) promtool from Debian's prometheus package, for linting /metrics
// and for checking and unit-testing alerting rules (`promtool check rules`, `promtool test rules`).
// The .deb is only unpacked (dpkg -x), never installed, into a cache outside the work tree next to
// the testbed binaries, so nothing on the machine changes and a second run downloads nothing.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

const log = (l: string) => process.stderr.write(`[promtool] ${l}\n`);

function cacheRoot(): string {
  const base =
    process.env.IPP_TESTBED_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ipp-testbed');
  return join(base, 'promtool');
}

function run(cmd: string, args: string[], cwd?: string): SpawnSyncReturns<string> {
  // stdout goes to our stderr: apt's progress is the progress output, and vitest keeps stdout clean.
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function must(r: SpawnSyncReturns<string>, what: string): string {
  if (r.error) throw new Error(`${what}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/**
 * Absolute path of a working promtool binary: $IPP_PROMTOOL if set, else Debian's package, downloaded
 * (apt-get download, so root is not needed for it, only a Debian-family machine) and unpacked on first use.
 */
export function ensurePromtool(): string {
  // An explicit binary (non-Debian machines, or a newer Prometheus release) wins.
  if (process.env.IPP_PROMTOOL) return process.env.IPP_PROMTOOL;
  const root = cacheRoot();
  const bin = join(root, 'current', 'usr', 'bin', 'promtool');
  if (existsSync(join(root, 'current', '.complete'))) return bin;

  mkdirSync(root, { recursive: true });
  const tmp = mkdtempSync(join(root, 'tmp-'));
  try {
    log(`downloading Debian's prometheus package (about 20 MB) into ${root}`);
    let dl = run('apt-get', ['download', 'prometheus'], tmp);
    if (dl.status !== 0) {
      // A fresh machine has no package lists yet; apt-get download then finds nothing.
      log('apt-get download failed; running apt-get update first');
      must(run('apt-get', ['update']), 'apt-get update');
      dl = run('apt-get', ['download', 'prometheus'], tmp);
    }
    must(dl, 'apt-get download prometheus');
    const deb = readdirSync(tmp).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download prometheus left no .deb in ${tmp}`);
    log(`unpacking ${deb}`);
    const tree = join(tmp, 'tree');
    must(run('dpkg', ['-x', join(tmp, deb), tree]), 'dpkg -x');
    const version = must(run(join(tree, 'usr', 'bin', 'promtool'), ['--version']), 'promtool --version');
    writeFileSync(join(tree, '.complete'), `${deb}\n${version}`);
    // A concurrent first use may have won the race; its copy is as good as ours.
    if (!existsSync(join(root, 'current', '.complete'))) {
      rmSync(join(root, 'current'), { recursive: true, force: true });
      renameSync(tree, join(root, 'current'));
    }
    log(`ready: ${version.split('\n')[0]}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return bin;
}

/** Runs `promtool check metrics` on an exposition; returns its complaints (empty when clean). */
export function checkMetrics(exposition: string): { ok: boolean; problems: string } {
  const r = spawnSync(ensurePromtool(), ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { ok: r.status === 0, problems: `${r.stdout}${r.stderr}`.trim() };
}

/** A Prometheus rule file: { groups: [{ name, rules: [...] }] }. */
export interface RuleFile {
  groups: { name: string; rules: object[] }[];
}

/** Runs promtool in a scratch directory holding `files` (name → YAML content as objects). */
function inScratch(files: Record<string, object>, args: string[]): { ok: boolean; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ipp-promtool-'));
  try {
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), stringify(content));
    const r = spawnSync(ensurePromtool(), args, { cwd: dir, encoding: 'utf8' });
    if (r.error) throw r.error;
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `promtool check rules`: syntax, PromQL parsing, templates. */
export function checkRules(rules: RuleFile): { ok: boolean; output: string } {
  return inScratch({ 'rules.yaml': rules }, ['check', 'rules', 'rules.yaml']);
}

/**
 * `promtool test rules` with `tests` (the tests: list of a promtool unit-test file, each with
 * interval, input_series and alert_rule_test) against `rules`; ok is false when any expectation fails.
 */
export function testRules(
  rules: RuleFile,
  tests: object[],
  evaluationInterval = '1m',
): { ok: boolean; output: string } {
  return inScratch(
    {
      'rules.yaml': rules,
      'tests.yaml': { rule_files: ['rules.yaml'], evaluation_interval: evaluationInterval, tests },
    },
    ['test', 'rules', 'tests.yaml'],
  );
}
