// The image runs a bundle (`npm run build`, esbuild), not the sources the other tests run: every
// chunk of it must load, the lazily imported ones too (the AWS and GCE providers, whose SDKs stay
// in node_modules, and the webhook), and the controller must start from it.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const node = join(root, 'node_modules', '.bin', 'node');

describe('the bundle the image runs', () => {
  let out: string;
  beforeAll(() => {
    out = mkdtempSync(join(tmpdir(), 'ipp-build-'));
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, env: { ...process.env, IPP_BUILD_OUT: out } });
    // As the image lays it out: package.json (ESM) beside it, node_modules next to it.
    copyFileSync(join(root, 'package.json'), join(out, 'package.json'));
    symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'));
  }, 120_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('loads every chunk, the providers’ and the webhook’s included', () => {
    const chunks = readdirSync(out).filter((f) => f.endsWith('.js') && f !== 'main.js');
    expect(chunks.some((f) => f.startsWith('provider-'))).toBe(true);
    expect(chunks.some((f) => f.startsWith('run-'))).toBe(true);
    const script = `for (const f of ${JSON.stringify(chunks)}) await import('./' + f);`;
    execFileSync(node, ['--input-type=module', '-e', script], { cwd: out, stdio: 'pipe' });
  });

  it('starts the controller (its flags parsed, its help printed)', () => {
    const help = execFileSync(node, [join(out, 'main.js'), '--help'], { encoding: 'utf8' });
    expect(help).toContain('--provider');
  });
});
