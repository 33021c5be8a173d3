import { defineConfig } from 'vitest/config';

/** The model packs' golden tests: they need the fetched packs (`npm run test:packs` fetches first), so they stay out of `npm test`. */
export default defineConfig({
  test: {
    name: 'packs',
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/packs/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
