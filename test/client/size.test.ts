/**
 * Size budgets of flowsync-client, measured as an app pays them (esbuild, ESM,
 * minified, everything bundled; react / rxjs external): a size is deterministic,
 * so this is a plain assertion, not a benchmark.
 */
import { describe, expect, it } from "vitest";
import { bundleSize, clientEntries, clientSizes } from "../../scripts/bundle-size";

const KB = 1024;

describe("flowsync-client bundle size", () => {
  // 6 KB until the PRESENCE event (its guard, the store's list, the handler: 134 bytes gzip) — raised by that;
  // +64 B for embedded entities (issue 12: the store's replace-all of a kind, the snapshot's element
  // keys and their guards), measured at +76 B gzip (6269 → 6345, scripts/bundle-size.ts); +32 B more for a
  // replace-all dropping every optimistic edit of its kind, not only the document id's (6345 → 6376).
  it("client ≤ 6.15 KB + 96 B gzip; /react and /rxjs ≤ 1.5 KB more each", async () => {
    const { client, react, rxjs } = await clientSizes();
    expect(client.gzip).toBeLessThanOrEqual(6.15 * KB + 96);
    expect(react.gzip - client.gzip).toBeLessThanOrEqual(1.5 * KB);
    expect(rxjs.gzip - client.gzip).toBeLessThanOrEqual(1.5 * KB);
    // The bindings really are in their bundles (the deltas measure something).
    expect(react.gzip).toBeGreaterThan(client.gzip);
    expect(rxjs.gzip).toBeGreaterThan(client.gzip);
  });

  it("bundles no zod and no framework copy", async () => {
    const { build } = await import("esbuild");
    for (const [entry, external] of [
      [clientEntries.client, []],
      [clientEntries.react, ["react"]],
      [clientEntries.rxjs, ["rxjs"]],
    ] as const) {
      const result = await build({
        stdin: { contents: entry, resolveDir: process.cwd(), loader: "ts" },
        bundle: true,
        format: "esm",
        write: false,
        metafile: true,
        external: [...external],
        logLevel: "silent",
      });
      const inputs = Object.keys(result.metafile.inputs);
      expect(inputs.filter((i) => i.includes("node_modules"))).toEqual([]);
    }
    // The measurement itself: a known package has a size in the expected range.
    expect((await bundleSize(`export * from "eventsource-parser";`)).gzip).toBeGreaterThan(500);
  });
});
