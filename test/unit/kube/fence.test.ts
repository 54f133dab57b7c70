// The leadership fence: writes go through only inside a live leadership term.
import { describe, expect, it } from 'vitest';
import { LeadershipFence, NotLeaderError } from '../../../src/kube/fence.ts';

class Writer {
  calls: string[] = [];
  private readonly prefix = 'w';
  async write(x: string) {
    this.calls.push(`${this.prefix}:${x}`);
  }
  async read(x: string) {
    return `${this.prefix}:${x}`;
  }
}

describe('LeadershipFence', () => {
  it('refuses every call before leadership begins, naming what was refused', async () => {
    const fence = new LeadershipFence();
    const w = new Writer();
    const guarded = fence.guard(w, 'pods');
    expect(() => guarded.write('a')).toThrow(NotLeaderError);
    expect(() => guarded.write('a')).toThrow('refusing to pods.write');
    expect(w.calls).toEqual([]);
  });

  it('lets calls through during a term and refuses them the moment it ends, even mid-reconcile', async () => {
    const fence = new LeadershipFence();
    const w = new Writer();
    const guarded = fence.guard(w, 'pods');
    const term = new AbortController();
    fence.begin(term.signal);
    await guarded.write('a');
    term.abort();
    expect(() => guarded.write('b')).toThrow(NotLeaderError);
    expect(w.calls).toEqual(['w:a']);
  });

  it('refuses once the term’s deadline has passed, before any timer has aborted it (a process thawed late)', async () => {
    const fence = new LeadershipFence();
    const w = new Writer();
    const guarded = fence.guard(w, 'provider');
    let deadline = performance.now() + 60_000;
    fence.begin(new AbortController().signal, () => deadline);
    await guarded.write('a');
    deadline = performance.now() - 1;
    expect(() => guarded.write('b')).toThrow(NotLeaderError);
    expect(w.calls).toEqual(['w:a']);
  });

  it('guards only the named methods when told, and keeps `this`', async () => {
    const fence = new LeadershipFence();
    const guarded = fence.guard(new Writer(), 'provider', ['write']);
    expect(await guarded.read('x')).toBe('w:x');
    expect(() => guarded.write('x')).toThrow(NotLeaderError);
  });
});
