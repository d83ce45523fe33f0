/**
 * Databases, collections and their documents, in memory. Every mutation goes
 * through here so that each one is written to the oplog exactly once.
 *
 * Stored documents are never mutated in place: a write stores a new, deeply frozen object
 * (immutable.ts). So a cursor holding references to earlier versions keeps reading a stable
 * batch, and a reader that would edit what it was handed throws instead of corrupting the data.
 */
import { Aggregator } from "mingo";
import { EJSON, UUID, type Document } from "bson";
import { Codes, fail, ServerError } from "./errors";
import { copyDeep, freezeDeep } from "./immutable";
import { compareTs, type Oplog, type OplogEntry, type TxnOp, type UpdateDescription } from "./oplog";
import type { Timestamp } from "bson";

export interface IndexSpec {
  v: number;
  key: Document;
  name: string;
  unique?: boolean;
  [option: string]: unknown;
}

export interface Collection {
  name: string;
  uuid: UUID;
  options: Document;
  docs: Map<string, Document>;
  indexes: IndexSpec[];
  /** For each unique secondary index: index key value → document key. */
  uniques: Map<string, Map<string, string>>;
  /** A read-only view (create with viewOn + pipeline): no documents of its own. */
  view?: { viewOn: string; pipeline: Document[] };
}

/** Identity of a value as MongoDB compares it for equality (type-aware, key order-aware). */
export function valueKey(value: unknown): string {
  return EJSON.stringify({ v: value ?? null }, { relaxed: false });
}

export function getPath(doc: unknown, path: string): unknown {
  let cur: unknown = doc;
  for (const part of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Document)[part];
  }
  return cur;
}

const ID_INDEX = (): IndexSpec => ({ v: 2, key: { _id: 1 }, name: "_id_" });

/** What a commit hands the store: a transaction's buffered writes and catalog changes. */
export interface CommittedTransaction {
  ops: TxnOp[];
  created: Map<string, Collection>;
  indexes: Array<{ db: string; coll: string; spec: IndexSpec }>;
}

export class Store {
  private readonly dbs = new Map<string, Map<string, Collection>>();
  /** While a transaction is applied its writes are logged once, together, not one by one. */
  private applying = false;

  constructor(private readonly oplog: Oplog) {}

  databases(): string[] {
    return [...this.dbs.keys()].filter((db) => (this.dbs.get(db)?.size ?? 0) > 0);
  }

  collections(db: string): Collection[] {
    return [...(this.dbs.get(db)?.values() ?? [])];
  }

  get(db: string, coll: string): Collection | undefined {
    return this.dbs.get(db)?.get(coll);
  }

  /** Collections spring into existence on first write, as in MongoDB. */
  ensure(db: string, coll: string): Collection {
    return this.get(db, coll) ?? this.create(db, coll, {});
  }

  create(db: string, name: string, options: Document, view?: { viewOn: string; pipeline: Document[] }): Collection {
    validateName(db, name);
    if (this.get(db, name)) fail(Codes.NamespaceExists, `Collection ${db}.${name} already exists.`);
    const coll: Collection = {
      name,
      uuid: new UUID(),
      options,
      docs: new Map(),
      indexes: view ? [] : [ID_INDEX()],
      uniques: new Map(),
      ...(view ? { view } : {}),
    };
    this.attach(db, coll);
    // The create entry's `o` is the collection's options, then its _id index (OpObserverImpl::onCreateCollection);
    // a view's is its definition and it has no UUID.
    if (view) this.append({ op: "create", db, coll: name, view: true, images: false, operationDescription: { viewOn: view.viewOn, pipeline: view.pipeline } });
    else this.log({ op: "create", db, coll, operationDescription: { ...options, idIndex: ID_INDEX() } });
    return coll;
  }

  /** A new, valid collection that is not (yet) in the catalog: a transaction's create, until commit. */
  detachedCollection(db: string, name: string, options: Document): Collection {
    validateName(db, name);
    if (this.get(db, name)) fail(Codes.NamespaceExists, `Collection ${db}.${name} already exists.`);
    return { name, uuid: new UUID(), options, docs: new Map(), indexes: [ID_INDEX()], uniques: new Map() };
  }

  private attach(db: string, coll: Collection): void {
    let colls = this.dbs.get(db);
    if (!colls) this.dbs.set(db, (colls = new Map()));
    colls.set(coll.name, coll);
  }

  /**
   * Applies a committed transaction: its collections, indexes and writes, and one applyOps
   * oplog entry at one cluster time for all of its writes. All or nothing: should a write
   * fail now (a unique key taken since), everything is put back and WriteConflict raised.
   */
  applyTransaction(txn: CommittedTransaction, session: { lsid: Document; txnNumber: number }): void {
    if (txn.ops.length === 0 && txn.created.size === 0 && txn.indexes.length === 0) return; // read-only: nothing to log
    const touched = new Map<Collection, { docs: Map<string, Document>; uniques: Map<string, Map<string, string>>; indexes: IndexSpec[] }>();
    const save = (coll: Collection) => {
      if (!touched.has(coll))
        touched.set(coll, { docs: new Map(coll.docs), uniques: new Map([...coll.uniques].map(([k, m]) => [k, new Map(m)])), indexes: [...coll.indexes] });
    };
    const attached: Array<[string, string]> = [];
    this.applying = true;
    try {
      for (const [ns, coll] of txn.created) {
        const db = ns.slice(0, ns.indexOf("\0"));
        if (this.get(db, coll.name))
          fail(Codes.WriteConflict, `Collection ${db}.${coll.name} was created by another writer during the transaction`, ["TransientTransactionError"]);
        coll.docs = new Map();
        this.attach(db, coll);
        attached.push([db, coll.name]);
      }
      for (const { db, coll, spec } of txn.indexes) {
        const target = this.get(db, coll);
        if (!target) continue;
        save(target);
        this.createIndex(db, target, spec);
      }
      for (const op of txn.ops) {
        const coll = this.get(op.db, op.coll!)!;
        save(coll);
        const current = coll.docs.get(valueKey(op.id));
        if (op.op === "insert") this.insert(op.db, coll, op.post!);
        else if (op.op === "delete") this.remove(op.db, coll, current ?? op.pre!);
        else
          this.write(
            op.db,
            coll,
            current ?? op.pre!,
            op.post!,
            op.op === "update" ? { op: "update", updateDescription: op.updateDescription! } : { op: "replace" },
          );
      }
    } catch (err) {
      for (const [coll, was] of touched) Object.assign(coll, was);
      for (const [db, name] of attached) this.dbs.get(db)?.delete(name);
      if (err instanceof ServerError && err.code === Codes.DuplicateKey) {
        throw new ServerError(Codes.WriteConflict, `Write conflict on commit: ${err.message}`, ["TransientTransactionError"]);
      }
      throw err;
    } finally {
      this.applying = false;
    }
    if (txn.ops.length > 0) this.append({ op: "applyOps", db: "admin", images: false, ops: txn.ops, lsid: session.lsid, txnNumber: session.txnNumber });
  }

  imagesEnabled(coll: Collection): boolean {
    return coll.options.changeStreamPreAndPostImages?.enabled === true;
  }

  insert(db: string, coll: Collection, doc: Document): void {
    writable(db, coll);
    freezeDeep(doc);
    const key = valueKey(doc._id);
    if (coll.docs.has(key)) duplicate(db, coll, "_id_", { _id: doc._id });
    this.checkUniques(db, coll, doc, key);
    coll.docs.set(key, doc);
    this.indexUniques(coll, doc, key);
    this.log({ op: "insert", db, coll, id: doc._id, post: doc });
  }

  /** Replaces the stored version of a document; `op` says how the change streams describe it. */
  write(
    db: string,
    coll: Collection,
    before: Document,
    after: Document,
    how: { op: "update"; updateDescription: UpdateDescription } | { op: "replace" },
  ): void {
    writable(db, coll);
    freezeDeep(after);
    if (how.op === "update") freezeDeep(how.updateDescription);
    const key = valueKey(before._id);
    this.checkUniques(db, coll, after, key);
    this.unindexUniques(coll, before);
    coll.docs.set(key, after);
    this.indexUniques(coll, after, key);
    this.log({ op: how.op, db, coll, id: after._id, pre: before, post: after, updateDescription: how.op === "update" ? how.updateDescription : undefined });
  }

  remove(db: string, coll: Collection, doc: Document): void {
    writable(db, coll);
    coll.docs.delete(valueKey(doc._id));
    this.unindexUniques(coll, doc);
    this.log({ op: "delete", db, coll, id: doc._id, pre: doc });
  }

  drop(db: string, name: string): boolean {
    const coll = this.get(db, name);
    if (!coll) return false;
    this.dbs.get(db)!.delete(name);
    if (coll.view) this.append({ op: "drop", db, coll: name, view: true, images: false, droppedDocs: [] });
    else this.log({ op: "drop", db, coll, droppedDocs: [...coll.docs.values()] });
    return true;
  }

  /** collMod: the changed options, and the options as they were (with the UUID, as mongod's `collectionOptions_old`). */
  modify(db: string, coll: Collection, changes: Document): void {
    const before = coll.options;
    coll.options = { ...coll.options, ...changes };
    this.log({ op: "collMod", db, coll, operationDescription: changes, stateBeforeChange: { collectionOptions: { uuid: coll.uuid, ...before } } });
  }

  /**
   * Logs index creation: one entry per call, its `indexes` as the change event shows them.
   * (mongod logs one `createIndexes` entry per index on an empty collection and one
   * `commitIndexBuild` with all of a command's indexes otherwise; the caller groups them so.)
   */
  indexesCreated(db: string, coll: Collection, specs: IndexSpec[]): void {
    if (specs.length > 0) this.log({ op: "createIndexes", db, coll, operationDescription: { indexes: specs.map((s) => ({ ...s })) } });
  }

  /** Drops every collection, then logs the dropDatabase; a database that does not exist logs nothing, as in mongod. */
  dropDatabase(db: string): void {
    const colls = this.collections(db);
    if (colls.length === 0) return;
    for (const coll of colls) this.drop(db, coll.name);
    this.dbs.delete(db);
    this.append({ op: "dropDatabase", db, images: false });
  }

  rename(db: string, from: string, toDb: string, to: string, dropTarget: boolean): void {
    const coll = this.get(db, from);
    if (!coll) fail(Codes.NamespaceNotFound, `Source collection ${db}.${from} does not exist`);
    validateName(toDb, to);
    const target = this.get(toDb, to);
    if (target) {
      if (!dropTarget) fail(Codes.NamespaceExists, `Target collection ${toDb}.${to} already exists`);
      // mongod logs no drop for the target: the rename entry itself carries `dropTarget`,
      // so change streams see only the rename (and a stream on the target is invalidated by it).
      this.dbs.get(toDb)!.delete(to);
    }
    this.dbs.get(db)!.delete(from);
    coll.name = to;
    let targetDb = this.dbs.get(toDb);
    if (!targetDb) this.dbs.set(toDb, (targetDb = new Map()));
    targetDb.set(to, coll);
    // The rename entry's `o` names the dropped target by its UUID (`dropTarget`), shown in operationDescription.
    const operationDescription = { to: { db: toDb, coll: to }, ...(target ? { dropTarget: target.uuid } : {}) };
    this.append({
      op: "rename",
      db,
      coll: from,
      collectionUUID: coll.uuid,
      to: { db: toDb, coll: to },
      images: false,
      droppedDocs: target ? [...target.docs.values()] : undefined,
      operationDescription,
    });
  }

  /** The primary's periodic no-op write: moves cluster time (and idle streams' resume tokens) on. */
  noop(): void {
    this.append({ op: "noop", db: "", images: false });
  }

  createIndex(db: string, coll: Collection, spec: IndexSpec): boolean {
    const same = coll.indexes.find((i) => i.name === spec.name);
    if (same) {
      if (valueKey(same.key) !== valueKey(spec.key) || !!same.unique !== !!spec.unique) {
        fail(Codes.IndexKeySpecsConflict, `An existing index has the same name as the requested index: ${spec.name}`);
      }
      return false;
    }
    if (coll.indexes.some((i) => valueKey(i.key) === valueKey(spec.key))) {
      fail(Codes.IndexOptionsConflict, `Index already exists with a different name`);
    }
    if (spec.unique) {
      const entries = new Map<string, string>();
      for (const [key, doc] of coll.docs) {
        const k = indexValue(spec, doc);
        if (entries.has(k)) duplicate(db, coll, spec.name, pickKey(spec, doc));
        entries.set(k, key);
      }
      coll.uniques.set(spec.name, entries);
    }
    coll.indexes.push(spec);
    return true;
  }

  /** Drops one index; mongod logs each dropped index as its own `dropIndexes` entry with the spec in `o2`. */
  dropIndex(db: string, coll: Collection, name: string): void {
    if (name === "_id_") fail(Codes.InvalidOptions, "cannot drop _id index");
    const at = coll.indexes.findIndex((i) => i.name === name);
    if (at < 0) fail(Codes.IndexNotFound, `index not found with name [${name}]`);
    const [spec] = coll.indexes.splice(at, 1);
    coll.uniques.delete(name);
    this.log({ op: "dropIndexes", db, coll, operationDescription: { indexes: [{ ...spec }] } });
  }

  /**
   * The documents of a collection as they were at cluster time `at` (for snapshot
   * reads): the current state with every newer oplog entry undone.
   */
  documentsAt(db: string, name: string, at: Timestamp | undefined, depth = 0): Document[] {
    const current = this.get(db, name);
    if (current?.view) return this.viewDocuments(db, current.view, at, depth);
    if (!at || compareTs(at, this.oplog.lastTs) >= 0) return current ? [...current.docs.values()] : [];
    if (compareTs(at, this.oplog.truncatedThrough) < 0) {
      fail(Codes.SnapshotTooOld, `Read timestamp ${at.t}.${at.i} is older than the oldest available timestamp.`);
    }
    let docs = new Map(current?.docs);
    for (const e of this.oplog.newerThan(at)) {
      if (e.op === "rename" && ((e.db === db && e.coll === name) || (e.to?.db === db && e.to.coll === name))) {
        fail(Codes.SnapshotUnavailable, `Unable to read from a snapshot due to pending collection catalog changes on ${db}.${name}`);
      }
      if (e.op === "applyOps") {
        // A transaction is undone as a whole: a snapshot sees all of it or none of it.
        for (const op of [...e.ops!].reverse()) if (op.db === db && op.coll === name) undo(docs, op);
        continue;
      }
      if (e.db !== db || e.coll !== name) continue;
      if (e.op === "drop") docs = new Map(e.droppedDocs!.map((d) => [valueKey(d._id), d]));
      else undo(docs, e);
    }
    return [...docs.values()];
  }

  /** A view's documents: its pipeline over its source (itself possibly a view), as mongod resolves views. */
  private viewDocuments(db: string, view: { viewOn: string; pipeline: Document[] }, at: Timestamp | undefined, depth: number): Document[] {
    // mongod limits view chains to 20 levels (ViewGraph::kMaxViewDepth).
    if (depth >= 20) fail(Codes.ViewDepthLimitExceeded, `View depth too deep or view cycle detected; maximum depth is 20`);
    // The view's stages edit what they are given: they run on copies (immutable.ts).
    const source = this.documentsAt(db, view.viewOn, at, depth + 1).map(copyDeep);
    return new Aggregator(view.pipeline, { collectionResolver: (other: string) => this.documentsAt(db, other, at, depth + 1).map(copyDeep) }).run(
      source,
    ) as Document[];
  }

  private checkUniques(db: string, coll: Collection, doc: Document, key: string): void {
    for (const spec of coll.indexes) {
      if (!spec.unique) continue;
      const owner = coll.uniques.get(spec.name)?.get(indexValue(spec, doc));
      if (owner !== undefined && owner !== key) duplicate(db, coll, spec.name, pickKey(spec, doc));
    }
  }

  private indexUniques(coll: Collection, doc: Document, key: string): void {
    for (const spec of coll.indexes) if (spec.unique) coll.uniques.get(spec.name)?.set(indexValue(spec, doc), key);
  }

  private unindexUniques(coll: Collection, doc: Document): void {
    for (const spec of coll.indexes) if (spec.unique) coll.uniques.get(spec.name)?.delete(indexValue(spec, doc));
  }

  private log(e: Omit<OplogEntry, "ts" | "wall" | "coll" | "images" | "collectionUUID"> & { coll: Collection }): void {
    if (this.applying) return;
    const { coll, ...rest } = e;
    this.append({ ...rest, coll: coll.name, collectionUUID: coll.uuid, images: this.imagesEnabled(coll) });
  }

  private append(e: Omit<OplogEntry, "ts" | "wall">): void {
    freezeDeep(e.operationDescription);
    freezeDeep(e.stateBeforeChange);
    const ts = this.oplog.tick();
    this.oplog.append({ ...e, ts, wall: new Date() } as OplogEntry);
  }
}

/** Undoes one CRUD write on a map of document versions (snapshot reads). */
function undo(docs: Map<string, Document>, e: Pick<OplogEntry, "op" | "id" | "pre">): void {
  if (e.op === "insert") docs.delete(valueKey(e.id));
  else if (e.op === "update" || e.op === "replace" || e.op === "delete") docs.set(valueKey(e.id), e.pre!);
}

function indexValue(spec: IndexSpec, doc: Document): string {
  return valueKey(Object.keys(spec.key).map((path) => getPath(doc, path) ?? null));
}

function pickKey(spec: IndexSpec, doc: Document): Document {
  return Object.fromEntries(Object.keys(spec.key).map((path) => [path, getPath(doc, path) ?? null]));
}

/** The duplicate-key error (11000) as mongod words it, with keyPattern and keyValue. */
export function duplicate(db: string, coll: Collection, index: string, keyValue: Document): never {
  const shown = Object.entries(keyValue)
    .map(([k, v]) => `${k}: ${EJSON.stringify(v ?? null)}`)
    .join(", ");
  const keyPattern = coll.indexes.find((i) => i.name === index)?.key ?? { _id: 1 };
  throw new ServerError(Codes.DuplicateKey, `E11000 duplicate key error collection: ${db}.${coll.name} index: ${index} dup key: { ${shown} }`, undefined, {
    keyPattern,
    keyValue,
  });
}

function writable(db: string, coll: Collection): void {
  if (coll.view) fail(Codes.CommandNotSupportedOnView, `Namespace ${db}.${coll.name} is a view, not a collection`);
}

function validateName(db: string, coll: string): void {
  if (!db || /[/\\. "$]/.test(db)) fail(Codes.InvalidNamespace, `Invalid database name: '${db}'`);
  if (!coll || coll.includes("$") || coll.includes("\0") || coll.startsWith(".") || coll.startsWith("system.")) {
    fail(Codes.InvalidNamespace, `Invalid collection name: ${coll}`);
  }
}
