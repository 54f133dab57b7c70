// vitest setupFiles of the e2e project: the isolation invariant (invariant.ts) holds throughout
// every test file. Its afterAll runs after the file's own cleanup (hooks unwind as a stack).
import { afterAll, beforeAll, expect } from 'vitest';
import { watchInvariant } from './invariant.ts';

let watch: ReturnType<typeof watchInvariant> | undefined;

beforeAll(() => {
  watch = watchInvariant();
});

afterAll(async () => {
  const found = await watch?.stop();
  expect(found, 'isolation invariant: pods on nodes they must never share (see test/e2e/support/invariant.ts)').toEqual(
    [],
  );
});
