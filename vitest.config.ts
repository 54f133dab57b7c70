import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          globalSetup: ['test/testbed/tools-setup.ts'],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/testbed/global-setup.ts'],
          // The isolation invariant is checked throughout every e2e file, not only the ones aiming at it.
          setupFiles: ['test/e2e/support/invariant-setup.ts'],
          // One control plane, 2 cores: files run one after another, each with its own namespace.
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
