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
import { beforeAll, describe, expect, it } from "vitest";
import { createFlowStore, subscribeFlow, type FlowStore, type FlowSubscription, type SnapshotData } from "flowsync-client";
import { snapshotDataSchema } from "../../src/events/schemas";
import { useBackend } from "../support/backend";
import { eventually } from "../support/eventually";
import { useFlowsync } from "../support/flowsync";
import { seededRandom, testSeed } from "../support/random";

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
