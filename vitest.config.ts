import { configDefaults, defineConfig } from "vitest/config";
import { clientSourceAlias } from "./packages/client/source-alias.ts";

export default defineConfig({
  // Tests run against the client's source: no build step between `npm ci` and `npm test`.
  resolve: { alias: clientSourceAlias },
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
