// The leadership fence: writes go through only inside a live leadership term, checked when a guarded
// call begins and again where each of its requests leaves a queue (recheckFence).
import { describe, expect, it } from 'vitest';
import { ApiClientConfig } from '../../../src/kube/client.ts';
import { LeadershipFence, NotLeaderError, recheckFence } from '../../../src/kube/fence.ts';
import { kubeconfigText } from './kubeconfig.ts';

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

describe('recheckFence: the fence again where a request leaves its queue', () => {
  it('refuses a guarded write that waited in the API client’s rate limit past the end of the term', async () => {
    const fence = new LeadershipFence();
    const term = new AbortController();
    fence.begin(term.signal);
    // One request a second, and the one token spent: the next waits about a second in the limiter.
    const kc = new ApiClientConfig({ qps: 1, burst: 1 });
    kc.loadFromString(kubeconfigText({ server: 'https://127.0.0.1:1' }));
    const url = 'https://127.0.0.1:1/api/v1/namespaces/a/pods/b';
    const writer = fence.guard({ patch: () => kc.credentials('PATCH', url) }, 'pods');
    await writer.patch();
    const queued = writer.patch();
    term.abort();
    await expect(queued).rejects.toThrow(/not the leader \(any more\): refusing to pods\.patch \(PATCH /);
    // Outside a guarded call (informers, the lease, the webhook) the same wait ends in a request.
    await expect(kc.credentials('GET', url)).resolves.toMatchObject({ headers: expect.any(Object) });
    await kc.close();
  });

  it('is a no-op outside a guarded call, and checks the term of the call it runs in', async () => {
    expect(() => recheckFence('GET x')).not.toThrow();
    const fence = new LeadershipFence();
    const term = new AbortController();
    fence.begin(term.signal);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const provider = fence.guard(
      {
        create: async () => {
          await gate; // a launch batch, a cloud API's token bucket
          recheckFence('RunInstances');
          return 'launched';
        },
      },
      'provider aws',
    );
    const launching = provider.create();
    term.abort();
    release();
    await expect(launching).rejects.toThrow('refusing to provider aws.create (RunInstances)');
  });
});
