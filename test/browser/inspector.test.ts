/**
 * The inspector page in real headless Chromium (Debian's `chromium`, driven by
 * playwright-core): nodes written with a plain MongoClient appear and move on the
 * SVG canvas; after a server-side cut and after the page's own "Drop connection",
 * the page resumes with every write in its event log exactly once, in order.
 *
 * Chromium is required, not optional: without it this test fails and says how
 * to install it (.ci/run does). CHROMIUM_PATH overrides /usr/bin/chromium.
 * Screenshots go to artifacts/ (gitignored).
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { useFlowsync } from "../support/flowsync";

// Functions passed to page.evaluate run in the page. The project compiles without the DOM lib,
// so the few DOM names they use are declared here (module scope).
interface PageElement {
  dataset: Record<string, string | undefined>;
  getAttribute(name: string): string | null;
  textContent: string | null;
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

type Row = { type: string; op: string; id: string; cursor: string };

/** The page's event log, oldest first. */
async function eventLog(): Promise<Row[]> {
  return page.$$eval("#log tbody tr.event", (trs) =>
    trs
      .map((tr) => (tr as unknown as PageElement).dataset)
      .sort((a, b) => Number(a.seq) - Number(b.seq))
      .map((d) => ({ type: d.type ?? "", op: d.op ?? "", id: d.id ?? "", cursor: d.cursor ?? "" })),
  );
}

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
    await page.screenshot({ path: path.join(ARTIFACTS, "inspector.png") });
  }, 90_000);
});
