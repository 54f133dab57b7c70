import { describe, expect, it } from 'vitest';
import { Coalescer } from '../../../../providers/aws/batch.ts';

/** A gate that opens one call at a time, like a queue with one token left. */
function serialGate() {
  let chain: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn);
    chain = p.catch(() => undefined);
    return p;
  };
}

describe('Coalescer', () => {
  it('serves a burst of same-key requests with as few calls as take() allows, in arrival order', async () => {
    const calls: string[][] = [];
    const c = new Coalescer<string, string>({
      gate: serialGate(),
      take: () => 3,
      serve: async (m) => {
        calls.push(m);
        return m.map((x) => x.toUpperCase());
      },
      retry: async () => {
        throw new Error('no retry expected');
      },
    });
    const out = await Promise.all(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((x) => c.submit('k', x)));
    expect(out).toEqual(['A', 'B', 'C', 'D', 'E', 'F', 'G']);
    expect(calls).toEqual([['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]);
  });

  it('never mixes keys', async () => {
    const calls: string[][] = [];
    const c = new Coalescer<string, string>({
      gate: serialGate(),
      take: () => 10,
      serve: async (m) => {
        calls.push(m);
        return m;
      },
      retry: async () => [],
    });
    await Promise.all([c.submit('x', '1'), c.submit('y', '2'), c.submit('x', '3')]);
    expect(calls.sort()).toEqual([['1', '3'], ['2']]);
  });

  it('rejects only the member whose result is an error, and hands a failed call to retry() with the same members', async () => {
    let retried: string[] = [];
    const c = new Coalescer<string, string>({
      gate: serialGate(),
      take: () => 10,
      serve: async (m) => {
        if (m.includes('boom')) throw new Error('throttled');
        return m.map((x) => (x === 'bad' ? new Error('bad one') : x));
      },
      retry: async (m) => {
        retried = m;
        return m.map((x) => `${x}!`);
      },
    });
    const [good, bad] = await Promise.allSettled([c.submit('k', 'good'), c.submit('k', 'bad')]);
    expect(good).toEqual({ status: 'fulfilled', value: 'good' });
    expect(bad.status).toBe('rejected');
    expect(await Promise.all([c.submit('j', 'boom'), c.submit('j', 'z')])).toEqual(['boom!', 'z!']);
    expect(retried).toEqual(['boom', 'z']);
  });
});
