/**
 * `npm run mongo:sim -- --port 0`: prints its connection string as its first
 * line, serves the driver, and exits 0 on SIGTERM. Independent of the test
 * backend: this is the simulator's own command line.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { MongoClient } from "mongodb";

const root = fileURLToPath(new URL("../../", import.meta.url));

describe("npm run mongo:sim", () => {
  it("prints a connection string the driver can use, then stops cleanly on SIGTERM", async () => {
    // Run exactly what the npm script runs ("tsx scripts/mongo-sim.ts"), with the local tsx.
    const script: string = JSON.parse(readFileSync(`${root}package.json`, "utf8")).scripts["mongo:sim"];
    const [bin, ...args] = script.split(" ");
    expect(bin).toBe("tsx");
    const child = spawn(`${root}node_modules/.bin/tsx`, [...args, "--port", "0"], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const firstLine = await new Promise<string>((resolve, reject) => {
        const lines = createInterface({ input: child.stdout! });
        lines.once("line", resolve);
        child.once("exit", (code) => reject(new Error(`mongo:sim exited (${code}) before printing`)));
      });
      expect(firstLine).toMatch(/^mongodb:\/\/127\.0\.0\.1:\d+\/\?replicaSet=rs0$/);
      const client = new MongoClient(firstLine, { serverSelectionTimeoutMS: 5_000 });
      try {
        expect((await client.db("admin").command({ ping: 1 })).ok).toBe(1);
        await client.db("cli").collection("c").insertOne({ n: 1 });
        expect(await client.db("cli").collection("c").countDocuments()).toBe(1);
      } finally {
        await client.close();
      }
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
