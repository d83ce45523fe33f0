/**
 * The built service as production runs it: `npm run build`'s output started with
 * plain `node dist/main.js` (no loader, no tsx), reading a FILTERS_DIR outside
 * the repository whose filter imports `flowsync/filters` and `zod` that its own
 * folder does not have. It answers /readyz, snapshots and streams, and serves the
 * prebuilt client bundle.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBackend, uniqueDb, type TestBackend } from "../support/backend";
import { eventually } from "../support/eventually";

const run = promisify(execFile);
const ROOT = path.resolve(".");

let backend: TestBackend;
let work: string;
let filtersDir: string;
let child: ChildProcess | undefined;
let output = "";

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });

beforeAll(async () => {
  await mkdir(path.join(ROOT, ".cache"), { recursive: true });
  work = await mkdtemp(path.join(ROOT, ".cache", "build-"));
  await run(process.execPath, ["--import", "tsx", "scripts/build.ts", "--outdir", path.join(work, "dist")], { cwd: ROOT });
  // Outside the repository, with no node_modules of its own: as a folder mounted into the image.
  filtersDir = await mkdtemp(path.join(tmpdir(), "flowsync-filters-"));
  await writeFile(
    path.join(filtersDir, "nodes.mjs"),
    [
      'import { z } from "zod";',
      'import { defineFilter } from "flowsync/filters";',
      'export default defineFilter({ collection: "nodes", event: "SYNC_CANVAS", entity: "node", privateFields: ["secret"], document: z.looseObject({ flowId: z.string() }) });',
    ].join("\n"),
  );
  backend = await startTestBackend();
}, 180_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
  await backend?.stop();
  if (work) await rm(work, { recursive: true, force: true });
  if (filtersDir) await rm(filtersDir, { recursive: true, force: true });
});

describe("npm run build → node dist/main.js", () => {
  it("has no tsx, esbuild or mongodb-memory-server on its static import graph", async () => {
    const main = await readFile(path.join(work, "dist/main.js"), "utf8");
    const statics = [...main.matchAll(/^import\s[^;]*?from\s*"([^"]+)"/gm)].map((m) => m[1]);
    expect(statics.length).toBeGreaterThan(5);
    for (const dev of ["tsx", "esbuild", "mongodb-memory-server", "flowsync-client", "flowsync-client/wire"]) expect(statics).not.toContain(dev);
  });

  it("runs without a loader, loads a filter from outside the repository, and serves a flow", async () => {
    const port = await freePort();
    const dbName = uniqueDb("build");
    child = spawn(process.execPath, [path.join(work, "dist/main.js")], {
      cwd: work,
      env: {
        PATH: process.env.PATH,
        MONGO_URL: backend.url,
        MONGO_DB: dbName,
        PORT: String(port),
        HOST: "127.0.0.1",
        FILTERS_DIR: filtersDir,
        LOG_FORMAT: "json",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.on("data", (d: Buffer) => (output += d));
    child.stderr!.on("data", (d: Buffer) => (output += d));
    const base = `http://127.0.0.1:${port}`;
    await eventually(
      `/readyz of node dist/main.js (output so far: ${output.slice(-500)})`,
      async () => {
        if (child!.exitCode !== null) throw new Error(`exited ${child!.exitCode}: ${output}`);
        return (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200;
      },
      30_000,
    );
    const writer = await new MongoClient(backend.url).connect();
    try {
      await writer
        .db(dbName)
        .collection<{ _id: string }>("nodes")
        .insertOne({ _id: "b1", flowId: "built", secret: "s", label: "x" } as never);
      const snapshot = await eventually("the snapshot", async () => {
        const body = (await (await fetch(`${base}/api/creative-flowboard/flows/built/snapshot`)).json()) as { canvas: { node?: unknown[] } };
        return body.canvas.node?.length === 1 ? body : false;
      });
      expect(snapshot.canvas.node).toEqual([{ _id: "b1", flowId: "built", label: "x" }]);
    } finally {
      await writer.close();
    }
    const bundle = await fetch(`${base}/inspector/flowsync-client.js`, { headers: { "accept-encoding": "identity" } });
    expect(bundle.status).toBe(200);
    expect(await bundle.text()).toBe(await readFile(path.join(work, "dist/inspector/flowsync-client.js"), "utf8"));
  }, 60_000);
});
