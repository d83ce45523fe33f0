/**
 * Issue 6, "done when" #1: snapshot + the client library's store = the database.
 *
 * Each trial: three independent MongoClients write nodes, edges and executions
 * of one flow as fast as they can; meanwhile snapshots are taken, and from each
 * snapshot's cursor a client (`subscribeFlow`, fetch reader) with its own
 * `createFlowStore()` subscribes. After the writes stop and a sentinel arrives,
 * every store must equal what MongoDB holds, with no duplicate dropped, no RESET,
 * no invalid event, and every insert/delete making sense in order.
 */
import type { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFlowStore, subscribeFlow, type FlowStore, type FlowSubscription, type SnapshotData } from "flowsync-client";
import { snapshotDataSchema } from "../../src/events/schemas";
import { useBackend } from "../support/backend";
import { eventually } from "../support/eventually";
import { useFlowsync } from "../support/flowsync";
import { seededRandom, testSeed } from "../support/random";
import { TcpProxy } from "../support/tcp-proxy";

const TRIALS = Number(process.env.CLIENT_STORE_TRIALS ?? 100);
const WRITERS = 3;

const h = useBackend();
const t = useFlowsync("store", {}, { backend: h });
/** Independent clients, each writing on its own connections. */
let writers: MongoClient[] = [];

beforeAll(async () => {
  writers = [t.writer, ...(await Promise.all(Array.from({ length: WRITERS - 1 }, () => h.newClient())))];
});

type Doc = Record<string, unknown> & { _id: string };

interface Observer {
  sub: FlowSubscription;
  store: FlowStore;
  problems: string[];
  errors: Error[];
}

/** A client from a snapshot, with a strict check of the canvas events it is given. */
function observe(flowId: string, snapshot: SnapshotData): Observer {
  const store = createFlowStore();
  const problems: string[] = [];
  const errors: Error[] = [];
  const known = new Set([...(snapshot.canvas.node ?? []), ...(snapshot.canvas.edge ?? [])].map((d) => String(d._id)));
  const sub = subscribeFlow(
    t.fs.url,
    flowId,
    {
      onCanvas: (e, { cursor }) => {
        if (e.op === "insert" && known.has(e.id)) problems.push(`insert of ${e.id} already known (${cursor})`);
        if (e.op === "delete" && !known.has(e.id)) problems.push(`delete of ${e.id} never seen (${cursor})`);
        if (e.op === "delete") known.delete(e.id);
        else known.add(e.id);
      },
      onError: (err) => errors.push(err),
    },
    { snapshot, store, transport: "fetch", retry: { initialMs: 50 } },
  );
  return { sub, store, problems, errors };
}

async function writeUntil(stop: () => boolean, client: MongoClient, w: number, flowId: string, rand: () => number): Promise<number> {
  const d = client.db(t.db.databaseName);
  const nodes = d.collection<Doc>("nodes");
  const edges = d.collection<Doc>("edges");
  const execs = d.collection<Doc>("flow_executions");
  const myNodes: string[] = [];
  const myEdges: string[] = [];
  const myExecs: string[] = [];
  let k = 0;
  const pick = (list: string[]) => list[Math.floor(rand() * list.length)];
  const pos = () => ({ x: Math.round(rand() * 800), y: Math.round(rand() * 600) });
  while (!stop()) {
    const r = rand();
    const id = `${flowId}-w${w}-${String(k++).padStart(4, "0")}`;
    if (myNodes.length < 2 || r < 0.25) {
      await nodes.insertOne({ _id: id, flowId, type: "llm", position: pos(), data: { label: id }, secrets: { key: "S3CRET" } });
      myNodes.push(id);
    } else if (r < 0.5) {
      await nodes.updateOne({ _id: pick(myNodes) }, { $set: { position: pos(), "data.n": k } });
    } else if (r < 0.58) {
      await nodes.replaceOne({ _id: pick(myNodes) }, { flowId, type: "prompt", position: pos(), data: { text: `r${k}` } });
    } else if (r < 0.68) {
      await nodes.deleteOne({ _id: myNodes.splice(Math.floor(rand() * myNodes.length), 1)[0] });
    } else if (r < 0.78) {
      await edges.insertOne({ _id: id, flowId, source: pick(myNodes), target: pick(myNodes) });
      myEdges.push(id);
    } else if (r < 0.84 && myEdges.length > 0) {
      await edges.deleteOne({ _id: myEdges.splice(Math.floor(rand() * myEdges.length), 1)[0] });
    } else if (r < 0.9 || myExecs.length === 0) {
      await execs.insertOne({ _id: id, flowId, status: "running", progress: 0, jobs: {} });
      myExecs.push(id);
    } else {
      await execs.updateOne({ _id: pick(myExecs) }, { $set: { progress: Math.floor(rand() * 100), [`jobs.${pick(myNodes)}`]: "running" } });
    }
  }
  return k;
}

function sortedById(docs: Iterable<Record<string, unknown>>): Record<string, unknown>[] {
  return [...docs].sort((a, b) => (String(a._id) < String(b._id) ? -1 : 1));
}

describe("snapshot + client store", () => {
  it(`equals the database after concurrent writers, from every snapshot's cursor (${TRIALS} trials)`, async () => {
    const seed = testSeed("client-store");
    const only = process.env.TEST_TRIAL === undefined ? undefined : Number(process.env.TEST_TRIAL);
    const totals = { writes: 0, snapshots: 0, events: 0, ms: 0 };
    for (let trial = 0; trial < TRIALS; trial++) {
      if (only !== undefined && trial !== only) continue;
      const started = Date.now();
      const trialSeed = seed + trial;
      const label = `trial ${trial} (seed ${seed}, TEST_TRIAL=${trial})`;
      const rand = seededRandom(trialSeed);
      const flowId = `cs-${trialSeed}`;
      let stop = false;
      const running = writers.map((c, w) => writeUntil(() => stop, c, w, flowId, seededRandom(trialSeed * 31 + w)));
      const observers: Observer[] = [];
      const snapshots = 1 + Math.floor(rand() * 3);
      for (let s = 0; s < snapshots; s++) {
        await new Promise((r) => setTimeout(r, 5 + rand() * 30));
        const res = await fetch(`${t.fs.url}/api/creative-flowboard/flows/${encodeURIComponent(flowId)}/snapshot`);
        const text = await res.text();
        expect(text, label).not.toContain("S3CRET");
        const snapshot = snapshotDataSchema.parse(JSON.parse(text));
        // Subscribe right away or a little later: both a live hand-over and a longer catch-up.
        if (rand() < 0.5) await new Promise((r) => setTimeout(r, rand() * 20));
        observers.push(observe(flowId, snapshot));
      }
      await new Promise((r) => setTimeout(r, 5 + rand() * 30));
      stop = true;
      totals.writes += (await Promise.all(running)).reduce((a, b) => a + b, 0);
      const sentinel = `${flowId}-end`;
      await t.db.collection<Doc>("nodes").insertOne({ _id: sentinel, flowId, position: { x: 0, y: 0 } });
      await eventually(`${label}: the sentinel in every store`, () => observers.every((o) => sentinel in o.store.getState().nodes), 20_000);
      for (const o of observers) o.sub.close();

      const truth = {
        nodes: sortedById(
          await t.db
            .collection<Doc>("nodes")
            .find({ flowId }, { projection: { secrets: 0 } })
            .toArray(),
        ),
        edges: sortedById(await t.db.collection<Doc>("edges").find({ flowId }).toArray()),
        execution: (await t.db.collection<Doc>("flow_executions").find({ flowId }).sort({ _id: -1 }).limit(1).toArray())[0] ?? null,
      };
      observers.forEach((o, i) => {
        const state = o.store.getState();
        const who = `${label}, client ${i}`;
        expect(o.problems, who).toEqual([]);
        expect(
          o.errors.map((e) => e.message),
          who,
        ).toEqual([]);
        expect(o.sub.stats, who).toMatchObject({ duplicates: 0, invalid: 0, resets: 0 });
        expect(sortedById(Object.values(state.nodes)), `${who}: nodes`).toEqual(truth.nodes);
        expect(sortedById(Object.values(state.edges)), `${who}: edges`).toEqual(truth.edges);
        expect(state.execution, `${who}: execution`).toEqual(truth.execution);
        totals.events += o.sub.stats.events;
      });
      totals.snapshots += observers.length;
      totals.ms += Date.now() - started;
    }
    console.log(
      `client-store: ${only === undefined ? TRIALS : 1} trials (seed ${seed}): ${totals.writes} writes, ${totals.snapshots} snapshots/clients, ` +
        `${totals.events} events applied, ${Math.round(totals.ms / Math.max(1, only === undefined ? TRIALS : 1))} ms per trial`,
    );
  }, 180_000);
});

describe("snapshot + client store, entities embedded in one flow document", () => {
  const TRIALS_EMBEDDED = Number(process.env.CLIENT_STORE_TRIALS ?? 30);
  const e = useFlowsync("store-emb", { FILTERS_DIR: "test/fixtures/filters-embedded" }, { backend: h });
  type Wf = { _id: string; [field: string]: unknown };

  let proxy: TcpProxy;
  beforeAll(async () => {
    await e.db.createCollection("workflows", { changeStreamPreAndPostImages: { enabled: true } });
    // The subscribers reach flowsync through a proxy that drops their connections at random moments.
    proxy = await TcpProxy.start(new URL(e.fs.url).host);
  });
  afterAll(async () => {
    await proxy?.close();
  });

  /** Every operator of issue 12 and replaceOne, on one document that all writers share. */
  async function writeEmbedded(stop: () => boolean, client: MongoClient, w: number, flowId: string, rand: () => number): Promise<number> {
    const wf = client.db(e.db.databaseName).collection<Wf>("workflows");
    let k = 0;
    let made = 0;
    const int = (n: number) => Math.floor(rand() * n);
    // Now and then two writers' pushes collide on purpose: ids repeat across writers (w0-3 and w0-3).
    const node = () => ({ id: `w${rand() < 0.05 ? 0 : w}-${made++}`, type: "llm", position: { x: int(800), y: int(600) }, credentials: { apiKey: "S3CRET" } });
    const q = { _id: flowId };
    while (!stop()) {
      k++;
      const doc = await wf.findOne(q);
      // Concurrent writers can leave nulls (a $set past the end of an array another writer shortened): skipped elements.
      const ids = ((doc?.nodes ?? []) as Array<{ id: string } | null>).flatMap((n) => (n && typeof n.id === "string" ? [n.id] : []));
      const any = () => ids[int(ids.length)] ?? "none";
      const r = rand();
      if (r < 0.15) await wf.updateOne(q, { $push: { nodes: { $each: Array.from({ length: 1 + int(2) }, node) } } } as never);
      else if (r < 0.2) await wf.updateOne(q, { $addToSet: { edges: { id: `e-${any()}`, source: any(), target: any() } } } as never);
      else if (r < 0.3) await wf.updateOne({ ...q, "nodes.id": any() }, { $set: { "nodes.$.position": { x: int(800), y: int(600) } } } as never);
      else if (r < 0.4) await wf.updateOne(q, { $set: { [`nodes.${int(Math.max(1, ids.length))}.data.n`]: k } } as never);
      else if (r < 0.47) await wf.updateOne(q, { $pull: { nodes: { id: any() } } } as never);
      else if (r < 0.52) await wf.updateOne(q, { $pullAll: { edges: ((doc?.edges ?? []) as object[]).slice(0, 1) } } as never);
      else if (r < 0.57) await wf.updateOne(q, { $pop: { nodes: rand() < 0.5 ? 1 : -1 } } as never);
      // Only where no element is null: MongoDB refuses a path through null (nodes.$[].position on a null element).
      else if (r < 0.64) await wf.updateOne({ ...q, nodes: { $ne: null } }, { $inc: { "nodes.$[].position.x": 1 } } as never);
      else if (r < 0.7) await wf.updateOne(q, { $set: { "nodes.$[n].type": `t${k}` } } as never, { arrayFilters: [{ "n.position.x": { $gte: int(800) } }] });
      else if (r < 0.76) await wf.updateOne(q, [{ $set: { nodes: { $reverseArray: "$nodes" }, viewport: { zoom: k } } }]);
      else if (r < 0.82) await wf.updateOne(q, [{ $set: { nodes: { $slice: ["$nodes", Math.max(0, ids.length - 1)] } } }]);
      else if (r < 0.86) await wf.updateOne(q, { $set: { [`nodes.${int(Math.max(1, ids.length))}.id`]: `w${w}-${k}-renamed` } } as never);
      else if (r < 0.9) await wf.replaceOne(q, { name: `r${k}`, nodes: [node(), ...((doc?.nodes ?? []) as object[]).slice(1)], edges: doc?.edges ?? [] });
      else await wf.updateOne(q, { $set: { name: `n${k}` } });
    }
    return k;
  }

  it(`equals the database after concurrent writers of one document, from every snapshot's cursor (${TRIALS_EMBEDDED} trials)`, async () => {
    const seed = testSeed("client-store/embedded");
    const totals = { writes: 0, events: 0, withSecrets: 0, reconnects: 0 };
    for (let trial = 0; trial < TRIALS_EMBEDDED; trial++) {
      const trialSeed = seed + trial;
      const label = `embedded trial ${trial} (seed ${seed})`;
      const rand = seededRandom(trialSeed);
      const flowId = `cse-${trialSeed}`;
      await e.db.collection<Wf>("workflows").insertOne({ _id: flowId, name: "start", nodes: [{ id: "first", position: { x: 0, y: 0 } }], edges: [] });
      let stop = false;
      let stopCuts = false;
      const cutRand = seededRandom(trialSeed * 7 + 1);
      const cutting = (async () => {
        while (!stopCuts) {
          await new Promise((r) => setTimeout(r, 5 + cutRand() * 40));
          if (!stopCuts) proxy.drop();
        }
      })();
      const running = writers.map((c, w) => writeEmbedded(() => stop, c, w, flowId, seededRandom(trialSeed * 31 + w)));
      const stores: Array<{ sub: FlowSubscription; store: FlowStore; errors: Error[] }> = [];
      for (let s = 0; s < 1 + Math.floor(rand() * 3); s++) {
        await new Promise((r) => setTimeout(r, 5 + rand() * 30));
        const text = await (await fetch(`${e.fs.url}/api/creative-flowboard/flows/${encodeURIComponent(flowId)}/snapshot`)).text();
        expect(text, label).not.toContain("S3CRET");
        const snapshot = snapshotDataSchema.parse(JSON.parse(text));
        if (rand() < 0.5) await new Promise((r) => setTimeout(r, rand() * 20));
        const store = createFlowStore();
        const errors: Error[] = [];
        const sub = subscribeFlow(
          `http://127.0.0.1:${proxy.port}`,
          flowId,
          { onError: (err) => errors.push(err) },
          { snapshot, store, transport: "fetch", retry: { initialMs: 20 } },
        );
        stores.push({ sub, store, errors });
      }
      await new Promise((r) => setTimeout(r, 5 + rand() * 30));
      stop = true;
      totals.writes += (await Promise.all(running)).reduce((a, b) => a + b, 0);
      await e.db.collection<Wf>("workflows").updateOne({ _id: flowId }, { $set: { name: "end" } });
      stopCuts = true;
      await cutting;
      await eventually(
        `${label}: the last change in every store`,
        () => stores.every((o) => o.store.getState().entities.flow?.[flowId]?.name === "end"),
        20_000,
      );
      for (const o of stores) o.sub.close();
      const stored = (await e.db.collection<Wf>("workflows").findOne({ _id: flowId }))!;
      // Private element fields stay in the database (nodes that the writers made carry them).
      if (JSON.stringify(stored).includes("S3CRET")) totals.withSecrets++;
      // The rules of docs/filters.md: an element without a string id is left out, and of two with one id the first counts.
      const byId = (list: Array<Record<string, unknown>>) => {
        const out: Record<string, Record<string, unknown>> = {};
        for (const item of list) {
          if (typeof item !== "object" || item === null) continue;
          const { credentials: _c, ...el } = item;
          if (typeof el.id === "string" && !(el.id in out)) out[el.id] = el;
        }
        return out;
      };
      const nodes = byId(stored.nodes as Array<Record<string, unknown>>);
      const edges = byId(stored.edges as Array<Record<string, unknown>>);
      stores.forEach((o, i) => {
        const who = `${label}, client ${i}`;
        expect(
          o.errors.map((err) => err.message),
          who,
        ).toEqual([]);
        expect(o.sub.stats, who).toMatchObject({ duplicates: 0, invalid: 0, resets: 0 });
        expect(o.store.getState().nodes, `${who}: nodes`).toEqual(nodes);
        expect(o.store.getState().edges, `${who}: edges`).toEqual(edges);
        totals.events += o.sub.stats.events;
        totals.reconnects += o.sub.stats.reconnects;
      });
    }
    expect(totals.withSecrets).toBeGreaterThan(0);
    expect(totals.reconnects).toBeGreaterThan(0);
    console.log(
      `client-store/embedded: ${TRIALS_EMBEDDED} trials (seed ${seed}): ${totals.writes} writes, ${totals.events} events applied, ${totals.reconnects} reconnects after dropped connections`,
    );
  }, 240_000);
});
