import { describe, expect, it } from 'vitest';
import { Shared } from '../../../src/state/shared.ts';

describe('Shared', () => {
  it('hands out one frozen copy per value, compared by content', () => {
    const s = new Shared();
    const a = s.value([{ kind: 'ReplicaSet', uid: 'u' }]);
    const b = s.value(JSON.parse('[{"kind":"ReplicaSet","uid":"u"}]') as typeof a);
    expect(b).toBe(a);
    expect(Object.isFrozen(a) && Object.isFrozen(a[0])).toBe(true);
    expect(s.value([{ kind: 'ReplicaSet', uid: 'v' }])).not.toBe(a);
  });

  it('forgets everything once full, so churn cannot grow it, and what it handed out stays valid', () => {
    const s = new Shared(2);
    const a = s.value({ n: 1 });
    s.value({ n: 2 });
    s.value({ n: 3 }); // full: starts over
    const again = s.value({ n: 1 });
    expect(again).toEqual(a);
    expect(again).not.toBe(a);
    expect(a).toEqual({ n: 1 });
  });
});
