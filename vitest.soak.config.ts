import { defineConfig } from "vitest/config";
import { clientSourceAlias } from "./packages/client/source-alias.ts";

/** `npm run test:soak`: the long tests (30 s outage, 10,000 connect/disconnect cycles); .ci/run runs them too. */
export default defineConfig({
  // Tests run against the client's source: no build step between `npm ci` and `npm test`.
  resolve: { alias: clientSourceAlias },
  test: {
    include: ["test/soak/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 300_000,
    hookTimeout: 60_000,
    pool: "forks",
    // One at a time: the cycle test measures the process's own sockets, timers and heap.
    maxWorkers: 1,
  },
});
