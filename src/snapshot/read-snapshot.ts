/**
 * A flow's current state, read at ONE point in time, plus the cursor from which
 * a subscription continues exactly after that point.
 *
 * All reads use `readConcern: {level: "snapshot"}` at one `atClusterTime` T: the
 * first read lets the server pick T (docs/mongodb.md#snapshot-reads), the others name it. The
 * cursor is a time cursor "after T", and a subscription from it catches up with
 * `startAtOperationTime` = T + 1 increment (watch/catch-up.ts): every write is
 * either in the snapshot (ts ≤ T) or in the stream (ts > T), never both, never neither.
 */
import type { Db, Document, Timestamp } from "mongodb";
import type { Logger } from "pino";
import { FlowsyncError } from "../errors";
import type { Rule } from "../events/rule";
import { encodeTimeCursor } from "../events/cursor";
import { idToString, toPlainJson } from "../events/plain-json";
import { redactDoc } from "../events/redact";
import { elementsOf, shown as shownElement, withoutElements, type ElementSkip } from "../events/elements";
import { idValues } from "../filters/compile";
import type { SnapshotData } from "../events/schemas";

export interface SnapshotOptions {
  db: Db;
  rules: ReadonlyMap<string, Rule>;
  scope: string;
  logger: Logger;
  /** Called for every document read, so that later deletes can be routed (FlowIdCache). */
  remember?: (collection: string, id: string, flowId: string) => void;
  /** How many log chunks at most when logs are asked for. */
  maxLogs?: number;
  /** Elements left out of snapshots, by reason (counted here, exported by /metrics). */
  counters?: SnapshotCounters;
}

export interface SnapshotCounters {
  elementsSkipped: Partial<Record<string, number>>;
}

export async function readSnapshot(o: SnapshotOptions, flowId: string, { logs = false } = {}): Promise<SnapshotData> {
  const rules = [...o.rules.values()];
  const at = await snapshotTime(o.db, rules[0]!.collection);
  const out: SnapshotData = { flowId, cursor: encodeTimeCursor({ t: at.t, i: at.i }, o.scope), clusterTime: `${at.t}.${at.i}`, canvas: {}, executions: [] };
  if (logs) out.logs = [];
  for (const rule of rules) {
    if (rule.event === "LOG_STREAM" && !logs) continue;
    // `routeBy: "_id"`: the flow is the document named by that id (a string, or the ObjectId it spells).
    const filter = rule.routeBy === "_id" ? { _id: { $in: idValues(flowId) } } : { [rule.routeBy]: flowId };
    const find: Document = { find: rule.collection, filter, readConcern: { level: "snapshot", atClusterTime: at } };
    // The latest execution state: the newest document (ObjectIds grow with time).
    if (rule.event === "EXECUTION_UPDATE") Object.assign(find, { sort: { _id: -1 }, limit: 1 });
    if (rule.event === "LOG_STREAM") Object.assign(find, { sort: { _id: 1 }, limit: o.maxLogs ?? 10_000 });
    const docs = await o.db.runCursorCommand(find).toArray();
    const shown = docs.flatMap((raw) => shape(o, rule, flowId, raw));
    if (rule.elements.length > 0) {
      // Embedded entities: the document without its entity collections, and each element as events carry it.
      const own = (out.canvas[rule.entity!] ??= []);
      for (const el of rule.elements) {
        out.canvas[el.entity] ??= [];
        (out.keys ??= {})[el.entity] = el.key;
      }
      for (const doc of shown) {
        own.push(withoutElements(doc, rule.elements));
        for (const el of rule.elements) {
          const skips: ElementSkip[] = [];
          out.canvas[el.entity]!.push(...elementsOf(doc, el, skips).map(shownElement));
          for (const skip of skips) {
            if (o.counters) o.counters.elementsSkipped[skip.reason] = (o.counters.elementsSkipped[skip.reason] ?? 0) + 1;
            o.logger.warn({ flowId, collection: rule.collection, reason: skip.reason, detail: skip.detail }, "snapshot: element left out");
          }
        }
      }
      continue;
    }
    if (rule.event === "SYNC_CANVAS") (out.canvas[rule.entity!] ??= []).push(...shown);
    else if (rule.event === "EXECUTION_UPDATE") out.executions.push(...shown);
    else out.logs!.push(...shown);
  }
  return out;
}

/** The cluster time the server picks for a snapshot read (a cheap read that returns it). */
async function snapshotTime(db: Db, collection: string): Promise<Timestamp> {
  const reply = await db.command({ find: collection, filter: {}, projection: { _id: 1 }, limit: 1, singleBatch: true, readConcern: { level: "snapshot" } });
  const at = reply.cursor?.atClusterTime as Timestamp | undefined;
  if (!at) throw new FlowsyncError("E_MONGO_UNUSABLE", "the server did not report atClusterTime for a snapshot read");
  return at;
}

/** A document as events carry it: plain JSON, private fields removed, checked against the filter's schema. */
function shape(o: SnapshotOptions, rule: Rule, flowId: string, raw: Document): Array<Record<string, unknown>> {
  const doc = redactDoc(toPlainJson(raw) as Record<string, unknown>, rule.privateFields);
  const id = idToString(raw._id);
  // As the mapper does: a filter with entities checks the document without them.
  const parsed = rule.schema?.safeParse(rule.elements.length > 0 ? withoutElements(doc, rule.elements) : doc);
  if (parsed && !parsed.success) {
    o.logger.warn({ flowId, collection: rule.collection, id }, "snapshot: document fails its filter's schema, left out");
    return [];
  }
  o.remember?.(rule.collection, id, flowId);
  return [doc];
}
