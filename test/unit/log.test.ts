import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CENSOR, createLogger, lazyChild, redact } from '../../src/log.ts';

/** A stream that keeps every line written to it. */
function capture() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, sink };
}

describe('logger', () => {
  it('never writes credentials, wherever they appear in a logged object', () => {
    const { lines, sink } = capture();
    const log = createLogger('info', sink);
    log.info(
      {
        user: { token: 'sekrit-token' },
        req: { headers: { authorization: 'Bearer abc.def' } },
        aws: { secretAccessKey: 'AKIAxyz', sessionToken: 'tok' },
        instance: 'class0-1',
      },
      'hello',
    );
    const out = lines.join('');
    expect(out).toContain('"instance":"class0-1"');
    for (const secret of ['sekrit-token', 'Bearer abc.def', 'AKIAxyz', '"tok"']) expect(out).not.toContain(secret);
    expect(out).toContain('[redacted]');
  });

  it("redacts an error's credentials and keeps it an error: message, stack and type", () => {
    const { lines, sink } = capture();
    const log = createLogger('info', sink);
    class LaunchError extends Error {}
    const err = Object.assign(new LaunchError('RunInstances failed'), {
      token: 'sekrit-token',
      headers: { Authorization: 'Bearer abc.def', accept: 'json' },
      code: 'Throttling',
    });
    log.error({ err, token: 'top-level', credentials: { accessKeyId: 'AKIA' } }, 'launch failed');
    const out = lines.join('');
    for (const secret of ['sekrit-token', 'Bearer abc.def', 'top-level', 'AKIA']) expect(out).not.toContain(secret);
    const line = JSON.parse(out) as { err: Record<string, unknown> };
    expect(line.err).toMatchObject({
      type: 'LaunchError',
      message: 'RunInstances failed',
      code: 'Throttling',
      token: CENSOR,
      headers: { Authorization: CENSOR, accept: 'json' },
    });
    expect(line.err.stack).toContain('RunInstances failed');
    // What the caller logged is left as it was.
    expect(err.token).toBe('sekrit-token');
    expect(err.headers.Authorization).toBe('Bearer abc.def');
  });

  it('censors a frozen object, a read-only field, bindings set later and what the message interpolates, without changing them', () => {
    const { lines, sink } = capture();
    const log = createLogger('info', sink);
    const cfg = Object.freeze({ token: 'frozen-token', region: 'eu-west-1' });
    const err = Object.defineProperty(new Error('denied'), 'credentials', { value: 'ro-secret', enumerable: true });
    log.warn(Object.freeze({ cfg, err, credentials: 'top-secret' }), 'reconcile failed');
    const child = log.child({ pod: 'a/b' });
    child.setBindings({ token: 'set-later' });
    child.info('bound');
    log.info('config %j', { aws: { secretAccessKey: 'interpolated-1' } });
    log.info({ pod: 'a/b' }, 'with %o', { cfg: { password: 'interpolated-2' } });
    const out = lines.join('');
    for (const secret of ['frozen-token', 'ro-secret', 'top-secret', 'set-later', 'interpolated-1', 'interpolated-2'])
      expect(out).not.toContain(secret);
    expect(out).toContain('"msg":"config {\\"aws\\":{\\"secretAccessKey\\":\\"[redacted]\\"}}"');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      cfg: { token: CENSOR, region: 'eu-west-1' },
      err: { message: 'denied' },
    });
    expect(cfg.token).toBe('frozen-token');
  });

  it("censors a child's lines when the child brings a log formatter of its own", () => {
    const { lines, sink } = capture();
    const log = createLogger('info', sink);
    const child = log.child({ pod: 'a/b' }, { formatters: { log: (o) => ({ ...o, shaped: true }) } });
    child.info({ aws: { secretAccessKey: 'own-formatter-secret' } }, 'shaped');
    expect(lines.join('')).not.toContain('own-formatter-secret');
    expect(JSON.parse(lines[0]!)).toMatchObject({ shaped: true, aws: { secretAccessKey: CENSOR } });
  });

  it('copies nothing when a line holds no credential', () => {
    const fields = { pod: 'a/b', instance: { name: 'class0-1', headers: { accept: 'json' } }, tries: [1, 2] };
    expect(redact(fields)).toBe(fields);
    const secret = { pod: 'a/b', aws: { sessionToken: 'tok', region: 'eu-west-1' } };
    expect(redact(secret)).toEqual({ pod: 'a/b', aws: { sessionToken: CENSOR, region: 'eu-west-1' } });
    expect(secret.aws.sessionToken).toBe('tok');
  });

  it('makes a lazy child only when it logs, with its bindings, redacted, and at the parent level', () => {
    const { lines, sink } = capture();
    const parent = createLogger('info', sink);
    let made = 0;
    const child = parent.child.bind(parent);
    parent.child = ((...a: Parameters<typeof child>) => (made++, child(...a))) as typeof parent.child;
    const log = lazyChild(parent, { instance: 'class0-1', credentials: 'sekrit' });
    expect(made).toBe(0);
    log.debug('below the level');
    expect(lines).toHaveLength(0);
    log.info({ pod: 'a/b' }, 'hello');
    log.warn('again');
    expect(made).toBe(1);
    expect(lines).toHaveLength(2);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({ instance: 'class0-1', pod: 'a/b', msg: 'hello', credentials: '[redacted]' });
    expect(log.level).toBe('info');
    expect(log.isLevelEnabled('debug')).toBe(false);
  });

  it('honours the level', () => {
    const { lines, sink } = capture();
    const log = createLogger('warn', sink);
    log.info('quiet');
    log.warn('loud');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: pino.levels.values.warn, msg: 'loud' });
  });

  it('loses no line when the process exits as main.ts does after a fatal error, though stdout is written asynchronously', () => {
    const log = JSON.stringify(pathToFileURL(resolve('src/log.ts')).href);
    const script = `import { createLogger } from ${log};
      const log = createLogger('info');
      for (let i = 0; i < 5000; i++) log.info({ i }, 'line');
      log.fatal('controller failed');
      setTimeout(() => process.exit(1), 1_000);
      log.flush(() => process.exit(1));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    expect(run.status, run.stderr).toBe(1);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(5001);
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ msg: 'controller failed' });
  });

  it('drops lines past its bound while stdout does not drain, keeps memory flat, and says how many once it drains', async () => {
    const log = JSON.stringify(pathToFileURL(resolve('src/log.ts')).href);
    // 64 MiB of lines into a pipe nobody reads yet; then the heap, after a full GC, on stderr; then
    // wait for the reader and the report of what was dropped.
    const script = `import { createLogger } from ${log};
      const log = createLogger('info');
      const pad = 'x'.repeat(1000);
      for (let i = 0; i < 65536; i++) log.info({ i, pad }, 'line');
      globalThis.gc();
      process.stderr.write(JSON.stringify({ heapMiB: process.memoryUsage().heapUsed / 2 ** 20 }) + '\\n');
      setTimeout(() => log.flush(() => process.exit(0)), 2_500);`;
    const child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.pause();
    let err = '';
    const reported = new Promise<{ heapMiB: number }>((done) =>
      child.stderr.on('data', (c: Buffer) => {
        err += String(c);
        if (err.includes('\n')) done(JSON.parse(err.split('\n')[0]!) as { heapMiB: number });
      }),
    );
    const { heapMiB } = await reported;
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += String(c)));
    child.stdout.resume();
    const code = await new Promise((done) => child.on('exit', done));
    expect(code, err).toBe(0);
    // Without the bound the queue held all 64 MiB.
    expect(heapMiB).toBeLessThan(40);
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; dropped?: number; i?: number });
    const kept = lines.filter((l) => l.msg === 'line').length;
    const report = lines.find((l) => l.dropped !== undefined);
    expect(kept).toBeLessThan(65536);
    expect(report?.dropped).toBe(65536 - kept);
  }, 30_000);
});
