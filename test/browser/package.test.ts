/**
 * flowsync-client installed the way users install it, proven in a real browser.
 *
 * `npm pack` the package, install the tarball into a temporary app (under
 * .cache/, gitignored; react, react-dom, @xyflow/react and vite come from this
 * repository's devDependencies), build a Vite + React Flow page (useFlow) and a
 * plain-JS page (subscribeFlow + createFlowStore), serve them from their own
 * origin (so CORS_ORIGINS is exercised), and drive Debian's chromium through a
 * TCP proxy in front of flowsync. After random writes by an independent
 * MongoClient, a server-side cut, a forced reconnect (the proxy resets every
 * connection) and an optimistic move, both pages' DOM equals MongoDB. A plain
 * Node 20 script imports the installed package without any loader.
 */
import { execFile } from "node:child_process";
import { existsSync, lstatSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { MongoClient, type Db } from "mongodb";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Flowsync } from "../../src/flowsync";
import { startTestBackend, uniqueDb, type TestBackend } from "../support/backend";
import { eventually } from "../support/eventually";
import { startTestFlowsync } from "../support/flowsync";
import { seededRandom, testSeed } from "../support/random";
import { TcpProxy } from "../support/tcp-proxy";

// Functions passed to page.evaluate run in the page; the project compiles without the DOM lib.
interface PageElement {
  dataset: Record<string, string | undefined>;
  getAttribute(name: string): string | null;
  style: { transform: string };
}
declare const document: { querySelectorAll(selector: string): Iterable<PageElement> };
declare const window: { moveOptimistic(id: string, x: number, y: number): void; moveActive(): boolean | null };

const run = promisify(execFile);
const ROOT = path.resolve(".");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SOURCES = path.join(ROOT, "test/browser/package-app");
const FLOW = "package-proof";

type Doc = { _id: string; flowId: string; [k: string]: unknown };
type Canvas = { nodes: Record<string, [number, number]>; edges: string[] };

let backend: TestBackend;
let fs: Flowsync;
let proxy: TcpProxy;
let writer: MongoClient;
let db: Db;
let work: string;
let app: string;
let site: http.Server;
let siteUrl: string;
let context: BrowserContext | undefined;
let profile: string | undefined;
const pack = { files: 0, size: 0, unpackedSize: 0 };

/**
 * Closes a page server at once. close() alone waits for every connection that is not idle, and
 * Chromium may hold one it opened ahead and never sent a request on, which Node does not count as
 * idle. A full CI run once hung in this test for its whole 60 s; that is the likely cause.
 */
function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}

async function serve(dir: string): Promise<http.Server> {
  const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };
  const server = http.createServer(async (req, res) => {
    const file = path.join(dir, path.normalize(new URL(req.url ?? "/", "http://x").pathname));
    if (!file.startsWith(dir)) return void res.writeHead(404).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": types[path.extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return server;
}

beforeAll(async () => {
  // Pack (prepack builds dist/) and install into a fresh app beside this repository's node_modules.
  await mkdir(path.join(ROOT, ".cache"), { recursive: true });
  work = await mkdtemp(path.join(ROOT, ".cache", "package-proof-"));
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", work], { cwd: path.join(ROOT, "packages/client") });
  const [info] = JSON.parse(stdout) as Array<{ filename: string; files: unknown[]; size: number; unpackedSize: number }>;
  Object.assign(pack, { files: info!.files.length, size: info!.size, unpackedSize: info!.unpackedSize });
  app = path.join(work, "app");
  await mkdir(app);
  await writeFile(path.join(app, "package.json"), JSON.stringify({ name: "proof-app", private: true, type: "module" }));
  await run("npm", ["install", path.join(work, info!.filename), "--no-audit", "--no-fund", "--no-package-lock"], { cwd: app });
  for (const f of await readdir(SOURCES)) await copyFile(path.join(SOURCES, f), path.join(app, f));
  const { build } = await import("vite");
  await build({
    root: app,
    configFile: false,
    logLevel: "warn",
    build: { outDir: path.join(app, "dist"), rollupOptions: { input: { react: path.join(app, "react.html"), plain: path.join(app, "plain.html") } } },
  });

  site = await serve(path.join(app, "dist"));
  siteUrl = `http://127.0.0.1:${(site.address() as { port: number }).port}`;
  backend = await startTestBackend();
  const dbName = uniqueDb("package");
  fs = await startTestFlowsync(backend.url, { MONGO_DB: dbName, RETRY_MS: "200", CORS_ORIGINS: siteUrl });
  proxy = await TcpProxy.start(new URL(fs.url).host);
  writer = await new MongoClient(backend.url).connect();
  db = writer.db(dbName);
}, 240_000);

afterAll(async () => {
  await context?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
  await proxy?.close();
  await writer?.close();
  await fs?.stop();
  await backend?.stop();
  if (site) await closeServer(site);
  if (work) await rm(work, { recursive: true, force: true });
});

async function launch(): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (.ci/run does this), or set CHROMIUM_PATH.`);
  profile = await mkdtemp(path.join(tmpdir(), "flowsync-chromium-"));
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1100, height: 800 },
  });
}

/** What MongoDB holds for the flow, in the pages' terms. */
async function inMongo(): Promise<Canvas> {
  const nodes: Canvas["nodes"] = {};
  for (const n of await db.collection<Doc>("nodes").find({ flowId: FLOW }).toArray()) {
    const p = n.position as { x: number; y: number };
    nodes[n._id] = [p.x, p.y];
  }
  const edges = (await db.collection<Doc>("edges").find({ flowId: FLOW }).toArray()).map((e) => e._id).sort();
  return { nodes, edges };
}

/** What React Flow rendered: node wrappers with their translate(), edges by id. */
const reactDom = (page: Page) =>
  page.evaluate((): Canvas => {
    const nodes: Canvas["nodes"] = {};
    for (const el of document.querySelectorAll(".react-flow__node[data-id]")) {
      const m = /translate\((-?[\d.]+)px, ?(-?[\d.]+)px\)/.exec(el.style.transform);
      nodes[el.dataset.id!] = m ? [Number(m[1]), Number(m[2])] : [Number.NaN, Number.NaN];
    }
    const edges = [...document.querySelectorAll('[data-testid^="rf__edge-"]')].map((e) => e.dataset.id!).sort();
    return { nodes, edges };
  });

const plainDom = (page: Page) =>
  page.evaluate((): Canvas["nodes"] => {
    const nodes: Canvas["nodes"] = {};
    for (const li of document.querySelectorAll("#nodes li")) nodes[li.dataset.id!] = [Number(li.dataset.x), Number(li.dataset.y)];
    return nodes;
  });

async function converged(react: Page, plain: Page, what: string): Promise<void> {
  await eventually(
    what,
    async () => {
      const want = await inMongo();
      expect(await reactDom(react)).toEqual(want);
      expect(await plainDom(plain)).toEqual(want.nodes);
      return true;
    },
    20_000,
  );
}

describe("flowsync-client from its tarball, in Chromium", () => {
  it("packs a small ESM package with types, and plain Node 20 imports the installed copy without a loader", async () => {
    const installed = path.join(app, "node_modules/flowsync-client");
    expect(lstatSync(installed).isSymbolicLink()).toBe(false);
    const manifest = JSON.parse(await readFile(path.join(installed, "package.json"), "utf8"));
    expect(manifest).toMatchObject({ name: "flowsync-client", version: "0.3.0", type: "module", license: "MIT" });
    for (const entry of Object.values(manifest.exports as Record<string, { types?: string } | string>)) {
      if (typeof entry === "object") expect(existsSync(path.join(installed, entry.types!))).toBe(true);
    }
    expect(manifest.dependencies).toBeUndefined();
    expect(existsSync(path.join(installed, "src"))).toBe(false);
    console.log(`flowsync-client tarball: ${pack.files} files, ${pack.size} bytes packed, ${pack.unpackedSize} unpacked`);

    await db.collection<Doc>("nodes").insertOne({ _id: "n-node", flowId: "node-check", position: { x: 1, y: 1 } });
    const { stdout } = await run(process.execPath, ["node-check.mjs", fs.url, "node-check"], { cwd: app });
    expect(JSON.parse(stdout)).toEqual({ status: "open", nodes: ["n-node"] });
  });

  it("a strict TypeScript consumer compiles against the installed types under NodeNext, Node16 and Bundler", async () => {
    const tsc = path.join(ROOT, "node_modules/.bin/tsc");
    const strict = [
      "--noEmit",
      "--strict",
      "--exactOptionalPropertyTypes",
      "--noUncheckedIndexedAccess",
      "--skipLibCheck",
      "false",
      "--target",
      "ES2022",
      "--lib",
      "ES2022,DOM",
      "--types",
      "react",
    ];
    for (const [module, resolution] of [
      ["NodeNext", "NodeNext"],
      ["Node16", "Node16"],
      ["ESNext", "Bundler"],
    ]) {
      await run(tsc, [...strict, "--module", module!, "--moduleResolution", resolution!, "consumer.ts"], { cwd: app }).catch((err: { stdout?: string }) => {
        throw new Error(`tsc --moduleResolution ${resolution}: ${err.stdout}`);
      });
    }
  }, 120_000);

  it("React Flow (useFlow) and a plain page equal MongoDB after random writes, a server-side cut, a forced reconnect and an optimistic move", async () => {
    const seed = testSeed("package-proof");
    const random = seededRandom(seed);
    const nodes = db.collection<Doc>("nodes");
    const edges = db.collection<Doc>("edges");
    const int = (n: number) => Math.floor(random() * n);
    let nextId = 0;
    const live: string[] = [];
    const write = async () => {
      const roll = random();
      if (live.length < 3 || roll < 0.35) {
        const id = `n${nextId++}`;
        live.push(id);
        await nodes.insertOne({ _id: id, flowId: FLOW, label: id, position: { x: int(2000), y: int(2000) } });
      } else if (roll < 0.7) {
        await nodes.updateOne({ _id: live[int(live.length)]! }, { $set: { position: { x: int(2000), y: int(2000) } } });
      } else if (roll < 0.85) {
        const [a, b] = [live[int(live.length)]!, live[int(live.length)]!];
        await edges.updateOne({ _id: `e-${a}-${b}` }, { $setOnInsert: { flowId: FLOW, source: a, target: b } }, { upsert: true });
      } else {
        const id = live.splice(int(live.length), 1)[0]!;
        await edges.deleteMany({ $or: [{ source: id }, { target: id }] });
        await nodes.deleteOne({ _id: id });
      }
    };
    for (let i = 0; i < 8; i++) await write();

    context = await launch();
    // Counts the EventSources a page opens (StrictMode mounts twice; the shared connection must open once).
    await context.addInitScript(() => {
      const g = globalThis as unknown as { EventSource: new (...a: unknown[]) => unknown; opened: number };
      const Native = g.EventSource;
      g.opened = 0;
      g.EventSource = class extends (Native as new (...a: unknown[]) => object) {
        constructor(...args: unknown[]) {
          super(...args);
          g.opened++;
        }
      } as never;
    });
    const react = await context.newPage();
    const plain = await context.newPage();
    const errors: string[] = [];
    for (const p of [react, plain]) p.on("pageerror", (e) => errors.push(e.message));
    const server = `http://127.0.0.1:${proxy.port}`;
    await react.goto(`${siteUrl}/react.html?server=${encodeURIComponent(server)}&flow=${FLOW}`);
    await plain.goto(`${siteUrl}/plain.html?server=${encodeURIComponent(server)}&flow=${FLOW}`);
    await converged(react, plain, "the first paint");
    expect(await react.evaluate(() => (globalThis as unknown as { opened: number }).opened)).toBe(1);

    for (let i = 0; i < 30; i++) await write();
    await converged(react, plain, `30 random writes (seed ${seed})`);

    fs.hub.closeAll("reset");
    for (let i = 0; i < 15; i++) await write();
    await converged(react, plain, "writes after a server-side cut");

    proxy.drop();
    for (let i = 0; i < 15; i++) await write();
    await converged(react, plain, "writes after the proxy reset every connection");

    // An optimistic move shows at once, then resolves to the server's value.
    const moved = live[0]!;
    const before = (await inMongo()).nodes[moved];
    await react.evaluate(([id]) => window.moveOptimistic(id, 4321, 1234), [moved] as const);
    await eventually("the optimistic position", async () => (await reactDom(react)).nodes[moved]?.join() === "4321,1234");
    expect((await inMongo()).nodes[moved]).toEqual(before);
    expect(await react.evaluate(() => window.moveActive())).toBe(true);
    await nodes.updateOne({ _id: moved }, { $set: { position: { x: 4320, y: 1230 } } });
    await converged(react, plain, "the server's value of the moved node");
    expect((await reactDom(react)).nodes[moved]).toEqual([4320, 1230]);
    expect(await react.evaluate(() => window.moveActive())).toBe(false);

    expect(errors).toEqual([]);
    expect(await react.getAttribute("#status", "data-status")).toBe("open");
  }, 180_000);

  it("a page on an origin missing from CORS_ORIGINS shows why it cannot connect (reason network), instead of hanging", async () => {
    const other = await serve(path.join(app, "dist"));
    try {
      context ??= await launch();
      const page = await context.newPage();
      const otherUrl = `http://127.0.0.1:${(other.address() as { port: number }).port}`;
      await page.goto(`${otherUrl}/plain.html?server=${encodeURIComponent(`http://127.0.0.1:${proxy.port}`)}&flow=${FLOW}`);
      await page.waitForSelector('#status[data-reason="network"]', { timeout: 20_000 });
      expect(await page.getAttribute("#status", "data-status")).toBe("connecting");
      expect(await page.textContent("#status")).toMatch(/CORS|network|fetch/i);
      await page.close();
    } finally {
      await closeServer(other);
    }
  }, 60_000);
});
