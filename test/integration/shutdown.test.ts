/**
 * The process as operators run it: `src/main.ts` in a child process, with its
 * environment, its signals and its exit code. Spawned as `node --import tsx`
 * (what `npx tsx` does, minus the npx and tsx wrapper processes between the
 * test and flowsync), so that the signal and the exit code are flowsync's own.
 */
import http from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, inject, it } from "vitest";
import { startTestBackend, uniqueDb, useBackend } from "../support/backend";
import { startTestFlowsync, subscribeUrl } from "../support/flowsync";
import { runMain, type Run } from "../support/process";
import { SseClient } from "../support/sse-client";

const onSimulator = inject("backend").kind === "sim";
const EXIT_BOUND_MS = 15_000;

/** Waits for the exit, or kills the child (it is ours) and fails after `ms`. */
async function exitWithin(run: Run, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; elapsedMs: number }> {
  const start = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      run.child.kill("SIGKILL");
      reject(new Error(`did not exit within ${ms} ms; stdout: ${run.stdout}; stderr: ${run.stderr}`));
    }, ms);
  });
  try {
    const result = await Promise.race([run.exited, timeout]);
    return { ...result, elapsedMs: Date.now() - start };
  } finally {
    clearTimeout(timer);
  }
}

const h = useBackend();

describe("process", () => {
  it("SIGTERM ends every SSE stream and exits 0 within a few seconds", async () => {
    const dbName = uniqueDb("sd");
    const run = runMain({ MONGO_URL: h.backend.url, MONGO_DB: dbName, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info" });
    const clients: SseClient[] = [];
    try {
      const { url } = (await run.logLine("flowsync listening")) as { url: string };
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      for (const flowId of ["s1", "s1", "s2"]) clients.push(new SseClient(`${url}/api/creative-flowboard/subscribe/${flowId}`));
      await Promise.all(clients.map((c) => c.opened()));
      // Live, end to end, before the signal.
      for (const flowId of ["s1", "s2"]) await h.client.db(dbName).collection("nodes").insertOne({ flowId });
      await Promise.all(clients.map((c) => c.until((x) => x.messages.length === 1, 10_000, "an event")));

      run.child.kill("SIGTERM");
      const { code, signal, elapsedMs } = await exitWithin(run, EXIT_BOUND_MS);
      console.log(`shutdown: exit ${code} ${elapsedMs} ms after SIGTERM`);
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      await Promise.all(clients.map((c) => c.done));
      for (const c of clients) expect(c.ended).toBe(true);
      expect(run.stdout).toContain('"msg":"shutting down"');
      // Logged after the watcher and the MongoDB client are closed, and flushed before exit.
      expect(run.stdout).toContain('"msg":"flowsync stopped"');
    } finally {
      run.child.kill("SIGKILL");
      await Promise.all(clients.map((c) => c.close()));
    }
  }, 60_000);

  it("stop() closes each ended stream's connection at once instead of waiting out its keep-alive timeout", async () => {
    // A grace period far above the bound below: only closing idle connections promptly can pass.
    const fs = await startTestFlowsync(h.backend.url, { MONGO_DB: uniqueDb("sd"), SHUTDOWN_GRACE_MS: "30000" });
    const clients = ["k1", "k1", "k2"].map((flowId) => new SseClient(subscribeUrl(fs, flowId)));
    await Promise.all(clients.map((c) => c.opened()));
    const start = Date.now();
    await fs.stop();
    const elapsedMs = Date.now() - start;
    console.log(`shutdown: stop() with ${clients.length} open streams took ${elapsedMs} ms`);
    await Promise.all(clients.map((c) => c.done));
    for (const c of clients) expect(c.ended).toBe(true);
    // The two behaviours this tells apart: closing the ended connections at once (tens of milliseconds), or
    // waiting for Node's keep-alive timeout (http.Server's keepAliveTimeout, 5 s) to close them.
    expect(elapsedMs).toBeLessThan(new http.Server().keepAliveTimeout);
  });

  it("an invalid filter file stops startup with exit 1, naming the file and the problem", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "flowsync-filters-"));
    try {
      await writeFile(path.join(dir, "nodes.json"), JSON.stringify({ collection: "nodes", event: "SYNC_CANVAS", operations: ["upsert"] }));
      const run = runMain({ MONGO_URL: h.backend.url, PORT: "0", FILTERS_DIR: dir });
      const { code } = await exitWithin(run, EXIT_BOUND_MS);
      expect(code).toBe(1);
      const output = run.stdout + run.stderr;
      expect(output).toContain(path.join(dir, "nodes.json"));
      expect(output).toContain("operations");
      expect(output).not.toContain("flowsync listening");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it.runIf(onSimulator)(
    "a standalone MongoDB stops startup with exit 1 and says how to make it a replica set",
    async () => {
      // Simulator only: `replicaSet: false` runs it as a standalone server, which no shared test mongod is.
      const standalone = await startTestBackend({ replicaSet: false });
      try {
        const run = runMain({ MONGO_URL: standalone.url, PORT: "0" });
        const { code } = await exitWithin(run, EXIT_BOUND_MS);
        expect(code).toBe(1);
        const output = run.stdout + run.stderr;
        expect(output).toContain("--replSet rs0");
        expect(output).toContain("rs.initiate()");
      } finally {
        await standalone.stop();
      }
    },
    30_000,
  );

  it("an invalid environment variable stops startup with exit 1, naming the variable", async () => {
    const run = runMain({ MONGO_URL: h.backend.url, PORT: "abc" });
    const { code } = await exitWithin(run, EXIT_BOUND_MS);
    expect(code).toBe(1);
    const output = run.stdout + run.stderr;
    expect(output).toMatch(/invalid configuration: PORT: /);
  }, 30_000);
});
