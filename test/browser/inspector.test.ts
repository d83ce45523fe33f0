/**
 * The inspector page in real headless Chromium (Debian's `chromium`, driven by
 * playwright-core): nodes written with a plain MongoClient appear and move on the
 * SVG canvas; after a server-side cut and after the page's own "Drop connection",
 * the page resumes with every write in its event log exactly once, in order.
 * As a debugger: the payload pane shows an event's `doc` and `changes` as sent,
 * the type filter and search narrow the log, pause holds rows back, and "resume
 * from this cursor" reconnects with the chosen row's cursor, after which the log
 * holds exactly the events after it; copy cursor fills the clipboard; the flows
 * list and server figures come from the server, and with auth on the list shows
 * for an admin's `#token=` only. With presence on, the presence list shows the
 * flow's users (tabs counted, public claims only) but never the inspector, which
 * subscribes with ?presence=0. The presence test also takes docs/inspector.png's picture.
 *
 * Chromium is required, not optional: without it this test fails and says how
 * to install it (.ci/run does). CHROMIUM_PATH overrides /usr/bin/chromium.
 * Screenshots go to artifacts/ (gitignored).
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { SignJWT } from "jose";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { useFlowsync } from "../support/flowsync";
import { SseClient } from "../support/sse-client";

// Functions passed to page.evaluate run in the page. The project compiles without the DOM lib,
// so the few DOM names they use are declared here (module scope).
interface PageElement {
  dataset: Record<string, string | undefined>;
  getAttribute(name: string): string | null;
  textContent: string | null;
  hidden: boolean;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): { length: number };
  getAnimations(): unknown[];
};
declare const CSS: { escape(text: string): string };

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = path.resolve("artifacts");
const FLOW = "browser-flow";

// A short retry hint: EventSource reconnects after it.
const t = useFlowsync("browser", { RETRY_MS: "300" });
let context: BrowserContext;
let page: Page;
let profile: string;

/** Launched inside the test, so that a missing Chromium fails the test (a failing hook would only skip it). */
async function launch(): Promise<Page> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}. Install Debian's package: apt-get update && apt-get install -y chromium (.ci/run does this), or set CHROMIUM_PATH.`,
    );
  }
  profile = await mkdtemp(path.join(tmpdir(), "flowsync-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 760 },
  });
  return context.pages()[0] ?? (await context.newPage());
}

afterAll(async () => {
  await context?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

type Row = { type: string; op: string; id: string; cursor: string; seq: string; visible: boolean };

/** The page's event log (document events), oldest first; `visible` is false for rows a filter hides. */
async function eventLog(): Promise<Row[]> {
  return page.$$eval("#log tbody tr.event", (trs) =>
    trs
      .map((tr) => ({ d: (tr as unknown as PageElement).dataset, hidden: (tr as unknown as PageElement).hidden }))
      .sort((a, b) => Number(a.d.seq) - Number(b.d.seq))
      .map(({ d, hidden }) => ({ type: d.type ?? "", op: d.op ?? "", id: d.id ?? "", cursor: d.cursor ?? "", seq: d.seq ?? "", visible: !hidden })),
  );
}

const visibleRows = async () => (await eventLog()).filter((r) => r.visible).map(({ type, op, id }) => ({ type, op, id }));

async function nodePosition(id: string): Promise<{ x: number; y: number; transform: string | null } | null> {
  return page.evaluate((id) => {
    const g = document.querySelector(`#nodes g.node[data-id="${CSS.escape(id)}"]`);
    return g ? { x: Number(g.dataset.x), y: Number(g.dataset.y), transform: g.getAttribute("transform") } : null;
  }, id);
}

async function waitForPosition(id: string, x: number, y: number): Promise<void> {
  await page.waitForFunction(
    ([id, x, y]) => {
      const g = document.querySelector(`#nodes g.node[data-id="${CSS.escape(id)}"]`);
      return g !== null && Number(g.dataset.x) === x && Number(g.dataset.y) === y;
    },
    [id, x, y] as const,
    { timeout: 10_000 },
  );
}

const waitForState = (state: string) => page.waitForSelector(`#state[data-state="${state}"]`, { timeout: 10_000 });
const stat = async (name: string) => Number(await page.textContent(`#stat-${name}`));

describe("inspector page in Chromium", () => {
  it("shows nodes and moves live, and resumes after a server-side cut and a dropped connection with no missing or repeated event", async () => {
    const nodes = t.db.collection<{ _id: string; flowId: string; [k: string]: unknown }>("nodes");
    const edges = t.db.collection<{ _id: string; flowId: string; [k: string]: unknown }>("edges");
    const execs = t.db.collection<{ _id: string; flowId: string; [k: string]: unknown }>("flow_executions");
    /** Every write, in order (one writer: commit order = stream order). */
    const writes: Array<{ type: string; op: string; id: string }> = [];
    const node = async (id: string, type: string, label: string, x: number, y: number) => {
      await nodes.insertOne({ _id: id, flowId: FLOW, type, position: { x, y }, data: { label }, secrets: { apiKey: "S3CRET" } });
      writes.push({ type: "SYNC_CANVAS", op: "insert", id });
    };
    const move = async (id: string, x: number, y: number) => {
      await nodes.updateOne({ _id: id }, { $set: { position: { x, y } } });
      writes.push({ type: "SYNC_CANVAS", op: "update", id });
    };
    const edge = async (id: string, source: string, target: string) => {
      await edges.insertOne({ _id: id, flowId: FLOW, source, target });
      writes.push({ type: "SYNC_CANVAS", op: "insert", id });
    };

    page = await launch();
    const pageErrors: string[] = [];
    page.on("pageerror", (err) => pageErrors.push(err.message));
    page.on("console", (msg) => {
      if (msg.type() === "error" || msg.type() === "warning") pageErrors.push(msg.text());
    });

    await page.goto(`${t.fs.url}/?flow=${FLOW}`);
    await waitForState("open");
    expect(await page.textContent("#state")).toBe("open");

    // Appear.
    await node("prompt", "prompt", "Write a tagline", 40, 60);
    await node("llm", "llm", "gpt-small", 300, 40);
    await node("image", "image", "Poster render", 300, 240);
    await edge("e1", "prompt", "llm");
    await edge("e2", "llm", "image");
    await waitForPosition("image", 300, 240);
    expect(await nodePosition("prompt")).toEqual({ x: 40, y: 60, transform: "translate(40 60)" });
    await page.waitForSelector('#edges line[data-id="e2"]', { state: "attached" });

    // Move.
    for (let i = 1; i <= 5; i++) await move("llm", 300 + i * 20, 40 + i * 10);
    await waitForPosition("llm", 400, 90);
    const line = await page.$eval('#edges line[data-id="e1"]', (l) => ({ x2: Number(l.getAttribute("x2")), y2: Number(l.getAttribute("y2")) }));
    expect(line.x2).toBeGreaterThanOrEqual(400); // e1 now ends at the moved llm box
    expect(line.y2).toBeGreaterThanOrEqual(90);

    // Cut every stream server-side; write while the page is away.
    const before = await stat("reconnects");
    t.fs.hub.closeAll("reset");
    await waitForState("reconnecting");
    await move("prompt", 60, 200);
    await node("summary", "llm", "Summarize", 560, 120);
    await edge("e3", "llm", "summary");
    await nodes.deleteOne({ _id: "image" });
    writes.push({ type: "SYNC_CANVAS", op: "delete", id: "image" });
    await waitForPosition("summary", 560, 120);
    await waitForPosition("prompt", 60, 200);
    await page.waitForFunction(() => !document.querySelector('#nodes g.node[data-id="image"]'));
    expect(await stat("reconnects")).toBe(before + 1);

    // The page's own button: close, reopen with the last id after a moment.
    await page.click("#drop");
    await waitForState("reconnecting");
    await move("summary", 600, 300);
    await node("output", "output", "Publish", 860, 300);
    await edge("e4", "summary", "output");
    await execs.insertOne({ _id: "run-1", flowId: FLOW, status: "running", progress: 60, jobs: { prompt: "done", llm: "done", summary: "running" } });
    writes.push({ type: "EXECUTION_UPDATE", op: "insert", id: "run-1" });
    await waitForState("open");
    await waitForPosition("output", 860, 300);
    await page.waitForFunction(() => document.querySelector("#execution-progress")?.textContent === "60%");
    expect(await stat("reconnects")).toBe(before + 2);

    // The log holds every write exactly once, in order; nothing was dropped as a duplicate or reset.
    // A sentinel last, not a pause: the flow's events arrive in order, so a lost or repeated one shows before it.
    await execs.updateOne({ _id: "run-1" }, { $set: { sentinel: true } });
    writes.push({ type: "EXECUTION_UPDATE", op: "update", id: "run-1" });
    await page.waitForFunction((n) => document.querySelectorAll("#log tbody tr.event").length >= n, writes.length);
    const log = await eventLog();
    expect(log.map(({ type, op, id }) => ({ type, op, id }))).toEqual(writes);
    expect(log.every((r) => r.visible)).toBe(true);
    expect(new Set(log.map((r) => r.cursor)).size).toBe(log.length);
    expect(log.every((r) => r.cursor.startsWith("1."))).toBe(true);
    expect(await stat("duplicates")).toBe(0);
    expect(await stat("resets")).toBe(0);
    expect(await stat("events")).toBe(writes.length);
    expect(await page.content()).not.toContain("S3CRET");
    expect(pageErrors).toEqual([]);

    await mkdir(ARTIFACTS, { recursive: true });
    // The CSS transitions over before the picture.
    await page.waitForFunction(() => document.getAnimations().length === 0);
    await page.screenshot({ path: path.join(ARTIFACTS, "inspector-canvas.png") });
  }, 90_000);

  it("as a debugger: payload pane, type filter, search, pause, flows list and server figures, and resume from a chosen cursor with exactly the events after it", async () => {
    const flow = "debug-flow";
    type Doc = { _id: string; flowId: string; [k: string]: unknown };
    const nodes = t.db.collection<Doc>("nodes");
    const execs = t.db.collection<Doc>("flow_executions");
    const logs = t.db.collection<Doc>("flow_logs");
    const writes: Array<{ type: string; op: string; id: string }> = [];
    const wrote = (type: string, op: string, id: string) => writes.push({ type, op, id });

    page ??= await launch();
    const pageErrors: string[] = [];
    page.on("pageerror", (err) => pageErrors.push(err.message));
    page.on("console", (msg) => {
      if (msg.type() === "error" || msg.type() === "warning") pageErrors.push(msg.text());
    });
    await page.goto(`${t.fs.url}/?flow=${flow}`);
    await waitForState("open");

    await nodes.insertOne({
      _id: "d1",
      flowId: flow,
      type: "prompt",
      position: { x: 40, y: 40 },
      data: { label: "Needle in a haystack" },
      secrets: { apiKey: "S3CRET" },
    });
    wrote("SYNC_CANVAS", "insert", "d1");
    await execs.insertOne({ _id: "run-d", flowId: flow, status: "running", progress: 10 });
    wrote("EXECUTION_UPDATE", "insert", "run-d");
    await nodes.updateOne({ _id: "d1" }, { $set: { "position.x": 220, "data.label": "Moved" }, $unset: { type: "" } });
    wrote("SYNC_CANVAS", "update", "d1");
    await logs.insertOne({ _id: "chunk-d", flowId: flow, executionId: "run-d", nodeId: "d1", chunk: "token-1 " });
    wrote("LOG_STREAM", "insert", "chunk-d");
    await execs.updateOne({ _id: "run-d" }, { $set: { progress: 50 } });
    wrote("EXECUTION_UPDATE", "update", "run-d");
    await page.waitForFunction((n) => document.querySelectorAll("#log tbody tr.event").length >= n, writes.length);
    expect(await visibleRows()).toEqual(writes);

    // Payload pane: the update's doc (the document as read, private field removed) and its exact change.
    const rows = await eventLog();
    const update = rows[2]!;
    await page.click(`#log tbody tr[data-seq="${update.seq}"]`);
    await page.waitForSelector("#payload-changes:not([hidden])");
    expect(JSON.parse((await page.textContent("#payload-doc"))!)).toEqual({ _id: "d1", flowId: flow, position: { x: 220, y: 40 }, data: { label: "Moved" } });
    expect(JSON.parse((await page.textContent("#payload-changes"))!)).toEqual({ set: { "position.x": 220, "data.label": "Moved" }, unset: ["type"] });
    expect(await page.textContent("#payload-cursor")).toBe(update.cursor);
    // Copy cursor puts exactly that cursor on the clipboard.
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: t.fs.url });
    await page.click("#copy-cursor");
    await page.waitForFunction(() => document.querySelector("#copy-cursor")?.textContent === "Copied");
    expect(
      await page.evaluate(() => (globalThis as unknown as { navigator: { clipboard: { readText(): Promise<string> } } }).navigator.clipboard.readText()),
    ).toBe(update.cursor);
    expect(await page.textContent("#payload-title")).toContain("SYNC_CANVAS update d1");
    // An insert has a doc and no changes.
    await page.click(`#log tbody tr[data-seq="${rows[1]!.seq}"]`);
    await page.waitForSelector("#payload-changes[hidden]", { state: "attached" });
    expect(JSON.parse((await page.textContent("#payload-doc"))!)).toEqual({ _id: "run-d", flowId: flow, status: "running", progress: 10 });

    // Type filter, then search (in the payload too), then both off.
    await page.selectOption("#type-filter", "EXECUTION_UPDATE");
    expect(await visibleRows()).toEqual(writes.filter((w) => w.type === "EXECUTION_UPDATE"));
    await page.selectOption("#type-filter", "LOG_STREAM");
    expect(await visibleRows()).toEqual(writes.filter((w) => w.type === "LOG_STREAM"));
    await page.selectOption("#type-filter", "");
    await page.fill("#search", "haystack");
    expect(await visibleRows()).toEqual([writes[0]]);
    await page.fill("#search", "");
    expect(await visibleRows()).toEqual(writes);

    // The flows list (GET …/flows) and the server figures (/readyz), polled by the page.
    await page.waitForSelector(`#flows button[data-flow-id="${flow}"].current`);
    await page.waitForFunction(() => document.querySelector("#server-subscribers")?.textContent === "1");
    expect(await page.textContent("#server-lag")).toMatch(/^\d+\.\d s$/);

    // Pause: rows wait (the button counts them) and come on resume, in order.
    await page.click("#pause");
    await nodes.insertOne({ _id: "d2", flowId: flow, type: "llm", position: { x: 300, y: 200 } });
    wrote("SYNC_CANVAS", "insert", "d2");
    await page.waitForFunction(() => document.querySelector("#pause")?.textContent === "Resume (1)");
    expect(await visibleRows()).toEqual(writes.slice(0, -1));
    await page.click("#pause");
    expect(await visibleRows()).toEqual(writes);

    // Resume from the EXECUTION_UPDATE insert's cursor: the log then holds exactly the events after it, then live ones.
    const from = (await eventLog())[1]!;
    await page.click(`#log tbody tr[data-seq="${from.seq}"]`);
    await page.click("#resume-from");
    await page.waitForSelector(`#log tbody tr.meta[data-type="resume"][data-cursor="${from.cursor}"]`, { state: "attached" });
    await waitForState("open");
    await nodes.updateOne({ _id: "d2" }, { $set: { sentinel: true } });
    wrote("SYNC_CANVAS", "update", "d2");
    await page.waitForFunction((n) => document.querySelectorAll("#log tbody tr.event").length >= n, writes.length - 2);
    const resumed = await eventLog();
    expect(resumed.map(({ type, op, id }) => ({ type, op, id }))).toEqual(writes.slice(2));
    // The same events, not look-alikes: their cursors are those of the first time.
    expect(resumed.slice(0, 3).map((r) => r.cursor)).toEqual(rows.slice(2, 5).map((r) => r.cursor));
    // The canvas converged to the current state (the store replayed the same events).
    await waitForPosition("d2", 300, 200);
    await waitForPosition("d1", 220, 40);

    // Clear empties the log and the payload pane.
    await page.click("#clear");
    expect(await eventLog()).toEqual([]);
    expect(await page.textContent("#payload-title")).toBe("select an event");
    expect(await page.content()).not.toContain("S3CRET");
    expect(pageErrors).toEqual([]);
  }, 90_000);
});

describe("inspector page with auth on", () => {
  const SECRET = "a-browser-test-secret-of-at-least-32-bytes";
  const a = useFlowsync("browser-auth", { AUTH_JWT_SECRET: SECRET, RETRY_MS: "300" });
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
      .sign(new TextEncoder().encode(SECRET));

  it("#token= is sent for the stream and the flows list: an admin token lists the flows, a reader's token gets the admin note", async () => {
    page ??= await launch();
    await page.goto(`${a.fs.url}/?flow=guarded#token=${await sign({ flows: "*", flowsync_admin: true })}`);
    await waitForState("open");
    await page.waitForSelector('#flows button[data-flow-id="guarded"].current');
    expect(await page.isHidden("#flows-note")).toBe(true);

    await page.goto(`${a.fs.url}/?flow=guarded#token=${await sign({ flows: "*" })}`);
    // A new document (the hash alone would not reload it).
    await page.reload();
    await waitForState("open");
    await page.waitForFunction(() => document.querySelector("#flows-note")?.textContent?.includes("E_ADMIN_REQUIRED") === true);
    expect(await page.$$("#flows button")).toHaveLength(0);
  }, 60_000);
});

describe("inspector page with presence on", () => {
  const SECRET = "a-browser-test-secret-of-at-least-32-bytes";
  const p = useFlowsync("browser-presence", { AUTH_JWT_SECRET: SECRET, PRESENCE: "on", PRESENCE_CLAIMS: "color", RETRY_MS: "300" });
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT({ flows: "*", ...claims })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
      .sign(new TextEncoder().encode(SECRET));
  const presenceList = () =>
    page.$$eval("#presence li", (lis) =>
      lis.map((li) => {
        const d = (li as unknown as PageElement).dataset;
        return {
          id: d.id,
          connections: Number(d.connections),
          name: (li as unknown as { querySelector(s: string): PageElement | null }).querySelector(".name")?.textContent,
        };
      }),
    );

  it("lists who is on the flow (tabs counted, public claims only), not the inspector itself, and follows joins and leaves", async () => {
    const flow = "presence-flow";
    const join = async (sub: string) => {
      const token = await sign({ sub, name: sub.toUpperCase(), color: "#c93c3c", email: `${sub}@example.com` });
      const c = new SseClient(`${p.fs.url}/api/creative-flowboard/subscribe/${flow}`, { headers: { Authorization: `Bearer ${token}` } });
      await c.opened();
      return c;
    };
    const alice1 = await join("alice");
    const alice2 = await join("alice");
    const bob = await join("bob");

    page ??= await launch();
    // The inspector's own token has a sub and a name: with ?presence=0 it must still not be listed.
    await page.goto(`${p.fs.url}/?flow=${flow}#token=${await sign({ sub: "inspector-user", name: "Inspector", flowsync_admin: true })}`);
    await waitForState("open");
    await page.waitForFunction(() => document.querySelectorAll("#presence li").length === 2);
    expect(await presenceList()).toEqual([
      { id: "alice", connections: 2, name: "ALICE" },
      { id: "bob", connections: 1, name: "BOB" },
    ]);

    // The picture in docs/inspector.md (`cp artifacts/inspector.png docs/`): a small canvas, an update selected.
    const nodes = p.db.collection<{ _id: string; flowId: string; [k: string]: unknown }>("nodes");
    await nodes.insertOne({ _id: "brief", flowId: flow, type: "prompt", position: { x: 40, y: 200 }, data: { label: "Campaign brief" } });
    await nodes.insertOne({ _id: "copy", flowId: flow, type: "llm", position: { x: 300, y: 120 }, data: { label: "Write copy" } });
    await nodes.insertOne({ _id: "visual", flowId: flow, type: "image", position: { x: 300, y: 300 }, data: { label: "Key visual" } });
    await p.db.collection<{ _id: string; flowId: string; [k: string]: unknown }>("edges").insertMany([
      { _id: "e-copy", flowId: flow, source: "brief", target: "copy" },
      { _id: "e-visual", flowId: flow, source: "brief", target: "visual" },
    ]);
    await nodes.updateOne({ _id: "copy" }, { $set: { "position.x": 340, "data.label": "Write headline" } });
    await page.waitForSelector('#log tbody tr.event[data-op="update"][data-id="copy"]', { state: "attached" });
    await page.setViewportSize({ width: 1440, height: 900 });
    // The two users, their tabs and the inspector; the list is polled, so wait for the figure.
    await page.waitForSelector('#flows button[data-flow-id="presence-flow"] >> text=4 subs');
    await page.click('#log tbody tr.event[data-op="update"][data-id="copy"]');
    await page.waitForSelector("#payload-changes:not([hidden])");
    await mkdir(ARTIFACTS, { recursive: true });
    await page.waitForFunction(() => document.getAnimations().length === 0);
    await page.screenshot({ path: path.join(ARTIFACTS, "inspector.png") });
    await page.setViewportSize({ width: 1280, height: 760 });

    await bob.close();
    await page.waitForFunction(() => document.querySelectorAll("#presence li").length === 1);
    expect(await presenceList()).toEqual([{ id: "alice", connections: 2, name: "ALICE" }]);
    // PRESENCE frames are rows of the log too, with their own type in the filter.
    await page.selectOption("#type-filter", "PRESENCE");
    const rows = await page.$$eval("#log tbody tr", (trs) =>
      trs.filter((tr) => !(tr as unknown as PageElement).hidden).map((tr) => (tr as unknown as PageElement).dataset.type),
    );
    expect(rows.length).toBeGreaterThanOrEqual(2);
    expect(new Set(rows)).toEqual(new Set(["PRESENCE"]));
    const html = await page.content();
    expect(html).not.toContain("inspector-user");
    expect(html).not.toContain("@example.com");

    await alice1.close();
    await alice2.close();
    await page.waitForSelector("#presence-empty:not([hidden])");
    expect(await page.textContent("#presence-empty")).toBe("nobody");
  }, 60_000);
});

describe("inspector page with a flow stored as one document (embedded entities)", () => {
  const e = useFlowsync("browser-embedded", { RETRY_MS: "300", FILTERS_DIR: "test/fixtures/filters-embedded" });

  it("draws the document's nodes and edges and follows moves, pushes and pulls of its arrays", async () => {
    await e.db.createCollection("workflows", { changeStreamPreAndPostImages: { enabled: true } });
    const wf = e.db.collection<{ _id: string; [k: string]: unknown }>("workflows");
    const flowId = "rf-flow";
    page ??= await launch();
    await page.goto(`${e.fs.url}/?flow=${flowId}`);
    await waitForState("open");
    const n = (id: string, x: number, y: number) => ({ id, type: "default", position: { x, y }, data: { label: id }, credentials: { apiKey: "S3CRET" } });
    await wf.insertOne({
      _id: flowId,
      nodes: [n("a", 40, 60), n("b", 300, 40)],
      edges: [{ id: "e1", source: "a", target: "b" }],
      viewport: { x: 0, y: 0, zoom: 1 },
    });
    await waitForPosition("b", 300, 40);
    await page.waitForSelector('#edges line[data-id="e1"]', { state: "attached" });
    await wf.updateOne({ _id: flowId }, { $set: { "nodes.1.position": { x: 320, y: 200 } } });
    await waitForPosition("b", 320, 200);
    await wf.updateOne({ _id: flowId }, { $push: { nodes: n("c", 500, 100), edges: { id: "e2", source: "b", target: "c" } } } as never);
    await waitForPosition("c", 500, 100);
    await page.waitForSelector('#edges line[data-id="e2"]', { state: "attached" });
    await wf.updateOne({ _id: flowId }, { $pull: { nodes: { id: "a" }, edges: { id: "e1" } } } as never);
    await page.waitForSelector('#nodes g.node[data-id="a"]', { state: "detached", timeout: 10_000 });
    await page.waitForSelector('#edges line[data-id="e1"]', { state: "detached", timeout: 10_000 });
    expect(await nodePosition("b")).toEqual({ x: 320, y: 200, transform: "translate(320 200)" });
    expect(await page.content()).not.toContain("S3CRET");
  }, 60_000);
});
