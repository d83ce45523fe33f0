/**
 * `npm run build`: the service as plain JavaScript in dist/, so production runs
 * `node dist/main.js` with no tsx, esbuild or mongodb-memory-server installed.
 *
 * - dist/main.js: src/main.ts bundled by esbuild for Node 20 (npm packages stay
 *   external and come from node_modules; `flowsync-client/wire`, the wire
 *   contract, is bundled in through tsconfig `paths`).
 * - dist/inspector/: the inspector page's files, and the client library as one
 *   minified browser module (the inspector serves it as it is).
 * - dist/filters/: the shipped filters (filters/*.ts) as .js; their
 *   `flowsync/filters` and `zod` imports resolve through the loader's hook.
 * - dist/mongo-init.js, dist/demo-writer.js: the image's other two programs (docker-compose runs them).
 * - packages/client/dist: the flowsync-client package (tsc).
 *
 *   npx tsx scripts/build.ts [--outdir DIR]    (DIR must be inside the repository: node_modules is found from it)
 */
import { execFileSync } from "node:child_process";
import { cp, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { buildClientBundle } from "../src/http/inspector";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const flag = process.argv.indexOf("--outdir");
const out = path.resolve(flag > 0 ? process.argv[flag + 1]! : path.join(ROOT, "dist"));

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });

await build({
  entryPoints: {
    main: path.join(ROOT, "src/main.ts"),
    "mongo-init": path.join(ROOT, "mongo-init/init.ts"),
    "demo-writer": path.join(ROOT, "scripts/demo-writer.ts"),
  },
  outdir: out,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  sourcemap: true,
  logLevel: "warning",
  tsconfig: path.join(ROOT, "tsconfig.json"),
});

await cp(path.join(ROOT, "src/http/inspector"), path.join(out, "inspector"), { recursive: true });
await writeFile(path.join(out, "inspector/flowsync-client.js"), await buildClientBundle());

const filters = (await readdir(path.join(ROOT, "filters"))).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"));
await build({
  entryPoints: filters.map((f) => path.join(ROOT, "filters", f)),
  outdir: path.join(out, "filters"),
  bundle: false,
  platform: "node",
  format: "esm",
  target: "node20",
  logLevel: "warning",
});

execFileSync("npm", ["run", "-s", "build", "-w", "flowsync-client"], { cwd: ROOT, stdio: "inherit" });
console.log(
  `built ${path.relative(ROOT, out) || "."}/: main.js, mongo-init.js, demo-writer.js, inspector/, filters/ (${filters.length}); packages/client/dist`,
);
