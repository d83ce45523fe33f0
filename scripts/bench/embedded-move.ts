/**
 * flowsync's CPU per change when ONE node of a flow moves: a 200-node flow stored as one
 * document (filter `entities`, pre/post images on) against the same move in the
 * one-document-per-node schema (the shipped `nodes` filter). Per change it measures what the
 * flowsync process pays between the socket and the frame: the BSON decode of the change
 * event as the driver reads it (with its images), the mapping (for the embedded document:
 * applying the update description to the pre-image and diffing 200 elements) and the frame
 * encoding. The pipeline's redaction runs inside MongoDB and is not counted.
 *
 *   npx tsx scripts/bench/embedded-move.ts [changes=2000] [nodes=200]
 */
import { deserialize, serialize, Timestamp, type Document } from "bson";
import { encodeCursor } from "../../src/events/cursor";
import { mapChanges } from "../../src/events/map-change";
import { formatEvent } from "../../src/events/sse-frame";
import { compileFilters } from "../../src/filters/compile";
import { parseFilter } from "../../src/filters/schema";
import { subPosition } from "../../src/token";

const changes = Number(process.argv[2] ?? 2000);
const size = Number(process.argv[3] ?? 200);
const scope = "bench";

const node = (i: number, x = i * 10) => ({
  id: `node-${i}`,
  type: i % 3 === 0 ? "llm" : "prompt",
  position: { x, y: i * 5 },
  data: { label: `Node ${i}`, model: "small", params: { temperature: 0.2, maxTokens: 256 } },
  credentials: { apiKey: `K${i}` },
});

const perDocument = compileFilters([
  parseFilter({ collection: "nodes", event: "SYNC_CANVAS", entity: "node", privateFields: ["credentials"] }, "nodes.json"),
]).byCollection;
const embedded = compileFilters([
  parseFilter(
    {
      collection: "workflows",
      event: "SYNC_CANVAS",
      entity: "flow",
      routeBy: "_id",
      entities: { nodes: { entity: "node", privateFields: ["credentials"] }, edges: { entity: "edge" } },
    },
    "workflows.json",
  ),
]).byCollection;

const edges = Array.from({ length: size - 1 }, (_, i) => ({ id: `e${i}`, source: `node-${i}`, target: `node-${i + 1}` }));
const moved = Math.floor(size * 0.7);

function event(k: number, coll: string, documentKey: Document, updatedFields: Document, pre: Document | undefined, post: Document): Uint8Array {
  return serialize({
    _id: { _data: `82${(0x6b000000 + k).toString(16).toUpperCase()}000000012B` },
    operationType: "update",
    clusterTime: new Timestamp({ t: 0x6b000000 + k, i: 1 }),
    ns: { db: "flowboard", coll },
    documentKey,
    updateDescription: { updatedFields, removedFields: [], truncatedArrays: [] },
    fullDocument: post,
    ...(pre ? { fullDocumentBeforeChange: pre } : {}),
  });
}

/** The wire bytes of the change events, built before timing: the process only decodes them. */
function perDocumentEvents(): Uint8Array[] {
  return Array.from({ length: changes }, (_, k) => {
    const before = { _id: `node-${moved}`, flowId: "wf", ...node(moved, k) };
    const after = { ...before, position: { x: k + 1, y: before.position.y } };
    return event(k, "nodes", { _id: before._id }, { "position.x": k + 1 }, before, after);
  });
}

function embeddedEvents(withPreImage = true): Uint8Array[] {
  const nodes = Array.from({ length: size }, (_, i) => node(i));
  return Array.from({ length: changes }, (_, k) => {
    const before = { _id: "wf", name: "Flow", nodes: nodes.map((n, i) => (i === moved ? node(moved, k) : n)), edges, viewport: { x: 0, y: 0, zoom: 1 } };
    const after = { ...before, nodes: before.nodes.map((n, i) => (i === moved ? node(moved, k + 1) : n)) };
    return event(k, "workflows", { _id: "wf" }, { [`nodes.${moved}.position.x`]: k + 1 }, withPreImage ? before : undefined, after);
  });
}

function decodeOnly(wire: Uint8Array[]): number {
  const start = process.cpuUsage();
  for (const bytes of wire) deserialize(bytes);
  const cpu = process.cpuUsage(start);
  return (cpu.user + cpu.system) / wire.length;
}

function run(wire: Uint8Array[], rules: typeof perDocument): { cpuUs: number; frames: number; frameBytes: number; eventBytes: number } {
  let frames = 0;
  let frameBytes = 0;
  const start = process.cpuUsage();
  for (const bytes of wire) {
    const change = deserialize(bytes);
    const mapped = mapChanges(change, rules);
    if ("skip" in mapped) throw new Error(`skipped: ${mapped.detail}`);
    mapped.events.forEach((e, i) => {
      const position = i === mapped.events.length - 1 ? mapped.token : subPosition(mapped.token, i, mapped.clusterTime);
      const frame = formatEvent({ id: encodeCursor(position, scope), event: e.type, data: JSON.stringify(e.data) });
      frames++;
      frameBytes += Buffer.byteLength(frame);
    });
  }
  const cpu = process.cpuUsage(start);
  return {
    cpuUs: (cpu.user + cpu.system) / wire.length,
    frames: frames / wire.length,
    frameBytes: frameBytes / wire.length,
    eventBytes: wire.reduce((a, b) => a + b.length, 0) / wire.length,
  };
}

const cases: Array<[string, Uint8Array[], typeof perDocument]> = [
  ["one document per node (shipped `nodes` filter)", perDocumentEvents(), perDocument],
  [`one ${size}-node document (\`entities\`, pre-image)`, embeddedEvents(), embedded],
  [`one ${size}-node document, images off (replace-all from the lookup)`, embeddedEvents(false), embedded],
];
// Warm-up: the JIT sees both paths before anything is timed.
for (const [, wire, rules] of cases) run(wire.slice(0, 200), rules);
console.log(`CPU per change, ${changes} changes each (one node moves; node ${process.version}):\n`);
console.log(
  "| schema | CPU µs per change | of which BSON decode | events per change | frame bytes per change | change event bytes |\n|---|---:|---:|---:|---:|---:|",
);
for (const [name, wire, rules] of cases) {
  const r = run(wire, rules);
  const decode = decodeOnly(wire);
  console.log(`| ${name} | ${r.cpuUs.toFixed(1)} | ${decode.toFixed(1)} | ${r.frames} | ${Math.round(r.frameBytes)} | ${Math.round(r.eventBytes)} |`);
}
