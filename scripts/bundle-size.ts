/**
 * Bundle sizes as a browser app pays them: one ESM bundle per entry, minified by
 * esbuild with everything bundled (the framework, react or rxjs, external), then
 * gzipped (level 9). The same function measures flowsync-client (its source) and
 * the anchors (from node_modules), and test/client/size.test.ts holds the budgets.
 *
 *   npx tsx scripts/bundle-size.ts        # prints the table for BENCHMARKS.md
 */
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLIENT = `${ROOT}packages/client/src/`;

export interface Size {
  minified: number;
  gzip: number;
}

/** `code` is the entry module (e.g. `export * from "centrifuge"`), resolved from the repository root. */
export async function bundleSize(code: string, external: string[] = []): Promise<Size> {
  const result = await build({
    stdin: { contents: code, resolveDir: ROOT, loader: "ts", sourcefile: "entry.ts" },
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    legalComments: "none",
    external,
    write: false,
    logLevel: "silent",
    define: { "process.env.NODE_ENV": '"production"' },
  });
  const out = result.outputFiles[0]!.contents;
  return { minified: out.length, gzip: gzipSync(out, { level: 9 }).length };
}

export const clientEntries = {
  client: `export * from "${CLIENT}index.ts";`,
  react: `export * from "${CLIENT}index.ts"; export * from "${CLIENT}react.ts";`,
  rxjs: `export * from "${CLIENT}index.ts"; export * from "${CLIENT}rxjs.ts";`,
};

export async function clientSizes() {
  const client = await bundleSize(clientEntries.client);
  const react = await bundleSize(clientEntries.react, ["react"]);
  const rxjs = await bundleSize(clientEntries.rxjs, ["rxjs"]);
  return { client, react, rxjs };
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { client, react, rxjs } = await clientSizes();
  const rows: Array<[string, Size, string]> = [
    ["flowsync-client", client, ""],
    ["flowsync-client + /react (react external)", react, `+${kb(react.gzip - client.gzip)}`],
    ["flowsync-client + /rxjs (rxjs external)", rxjs, `+${kb(rxjs.gzip - client.gzip)}`],
    ["centrifuge", await bundleSize(`export * from "centrifuge";`), ""],
    ["@electric-sql/client", await bundleSize(`export * from "@electric-sql/client";`), ""],
    ["eventsource-parser", await bundleSize(`export * from "eventsource-parser";`), ""],
  ];
  console.log("| bundle | minified | gzip | over the client |\n|---|---:|---:|---:|");
  for (const [name, s, delta] of rows) console.log(`| ${name} | ${kb(s.minified)} | ${kb(s.gzip)} | ${delta} |`);
}
