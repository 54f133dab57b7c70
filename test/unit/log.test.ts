import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.ts';

describe('logger', () => {
  it('never writes credentials, wherever they appear in a logged object', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
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

  it('honours the level', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const log = createLogger('warn', sink);
    log.info('quiet');
    log.warn('loud');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: pino.levels.values.warn, msg: 'loud' });
  });
});
