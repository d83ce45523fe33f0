import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The long ones run with `npm run test:soak` (vitest.soak.config.ts).
    exclude: [...configDefaults.exclude, "test/soak/**"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests each start their own backend; two cores, so keep the pool small.
    pool: "forks",
    maxWorkers: 2,
  },
});
