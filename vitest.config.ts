import { defineConfig } from 'vitest/config';

/**
 * Three projects, all run by `npm test` (and CI):
 *   unit — codecs, policy, masking, engine against a real server: the fast subset a developer
 *          runs all the time (`npm run test:fast`);
 *   e2e  — the CLI, gateway, OIDC provider and tunnel as processes (`npm run test:e2e`);
 *   slow — real drivers, the differential corpus against the server's own plans, load
 *          (`npm run test:slow`).
 */
const shared = {
  testTimeout: 60_000,
  hookTimeout: 120_000,
  pool: 'forks' as const,
};

export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      { test: { ...shared, name: 'unit', include: ['test/**/*.test.ts'], exclude: ['test/e2e/**', 'test/slow/**'] } },
      { test: { ...shared, name: 'e2e', include: ['test/e2e/**/*.test.ts'] } },
      { test: { ...shared, name: 'slow', include: ['test/slow/**/*.test.ts'] } },
    ],
  },
});
