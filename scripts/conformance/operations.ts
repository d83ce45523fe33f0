// Entity operations: what `{ object, name, arguments }` does on each entity
// kind. Only the operations the CRUD and change-stream suites use are here;
// anything else (or any argument we don't know) fails the test loudly.
import type { AnyBulkWriteOperation, ChangeStream, ClientSession, Collection, Db, Document, MongoClient } from "mongodb";
import { bulkWriteResult, deleteResult, insertManyResult, insertOneResult, updateResult } from "./crud-results.js";
import { toReadPreference } from "./entities.js";
import { TestFileError, UnimplementedError } from "./errors.js";

type Args = Record<string, unknown>;

export interface OperationDef<T> {
  /** Every argument the operation accepts (spec: unknown arguments are an error). */
  args: string[];
  required?: string[];
  /** The result is an iterable of documents, each matched as a root document. */
  returnsList?: boolean;
  run: (target: T, args: Args) => Promise<unknown>;
}

/** Arguments minus the named positional ones: the rest are driver options. */
function optionsOf(args: Args, ...positional: string[]): Document {
  const out: Document = {};
  for (const [k, v] of Object.entries(args)) if (!positional.includes(k)) out[k] = v;
  return out;
}

function doc(value: unknown): Document {
  return (value ?? {}) as Document;
}

// --- change streams -------------------------------------------------------

const CHANGE_STREAM_ARGS = [
  "pipeline",
  "fullDocument",
  "fullDocumentBeforeChange",
  "resumeAfter",
  "startAfter",
  "startAtOperationTime",
  "batchSize",
  "collation",
  "maxAwaitTimeMS",
  "comment",
  "showExpandedEvents",
];

/** The spec wants the server-side cursor (the `aggregate`) to exist before
 *  the entity is saved, but the Node driver opens it lazily on first
 *  iteration. The driver's internal `cursor.cursorInit()` exists for exactly
 *  this (its source says it is exposed for the unified test runner); no
 *  public call does it without consuming a document. */
async function openChangeStream(stream: ChangeStream): Promise<ChangeStream> {
  const cursor = (stream as unknown as { cursor?: { cursorInit?: () => Promise<void> } }).cursor;
  if (typeof cursor?.cursorInit !== "function") {
    await stream.close();
    throw new UnimplementedError("createChangeStream: this driver version has no cursor.cursorInit()");
  }
  try {
    await cursor.cursorInit();
  } catch (err) {
    await stream.close().catch(() => undefined);
    throw err;
  }
  return stream;
}

function createChangeStream<T extends Collection | Db | MongoClient>(): OperationDef<T> {
  return {
    args: CHANGE_STREAM_ARGS,
    run: (watchable, args) => openChangeStream(watchable.watch((args.pipeline as Document[] | undefined) ?? [], optionsOf(args, "pipeline"))),
  };
}

export const changeStreamOperations: Record<string, OperationDef<ChangeStream>> = {
  // ChangeStream.next() keeps resuming on resumable errors and waits until a
  // change arrives or a non-resumable error surfaces: exactly this operation.
  iterateUntilDocumentOrError: { args: [], run: (stream) => stream.next() },
};

// --- collection -----------------------------------------------------------

const WRITE_COMMON = ["comment", "let", "hint", "collation", "bypassDocumentValidation"];

function returnDocument(value: unknown): "before" | "after" | undefined {
  if (value === undefined) return undefined;
  const lower = String(value).toLowerCase();
  if (lower !== "before" && lower !== "after") throw new TestFileError(`returnDocument must be Before or After, got ${String(value)}`);
  return lower;
}

const BULK_MODEL_ARGS: Record<string, string[]> = {
  insertOne: ["document"],
  updateOne: ["filter", "update", "upsert", "arrayFilters", "collation", "hint", "sort"],
  updateMany: ["filter", "update", "upsert", "arrayFilters", "collation", "hint"],
  replaceOne: ["filter", "replacement", "upsert", "collation", "hint", "sort"],
  deleteOne: ["filter", "collation", "hint"],
  deleteMany: ["filter", "collation", "hint"],
};

/** Spec write models are `{ insertOne: { document } }` etc., which is also the
 *  Node driver's shape; we only check that nothing unknown is passed along. */
function bulkModels(requests: unknown): AnyBulkWriteOperation[] {
  if (!Array.isArray(requests)) throw new TestFileError("bulkWrite requests must be an array");
  return requests.map((model: Document) => {
    const kinds = Object.keys(model);
    const known = BULK_MODEL_ARGS[kinds[0]!];
    if (kinds.length !== 1 || !known) throw new UnimplementedError(`bulkWrite model ${kinds.join(",")}`);
    for (const key of Object.keys(model[kinds[0]!] as Document)) {
      if (!known.includes(key)) throw new UnimplementedError(`bulkWrite ${kinds[0]}.${key}`);
    }
    return model as AnyBulkWriteOperation;
  });
}

/**
 * The CRUD spec says a document with `_id: null` is sent as it is (DRIVERS-2124),
 * but Node driver 7 replaces a null `_id` with a new ObjectId, as it does a missing
 * one (NODE-6468, open). `forceServerObjectId` turns that off, so the document
 * reaches the server unchanged; it is set only when a document has an explicit
 * null `_id`, so every other insert runs as the driver runs it by default.
 */
function keepNullIds(documents: unknown): { forceServerObjectId?: true } {
  const hasNullId = Array.isArray(documents) && documents.some((d) => d !== null && typeof d === "object" && "_id" in d && (d as Document)._id === null);
  return hasNullId ? { forceServerObjectId: true } : {};
}

export const collectionOperations: Record<string, OperationDef<Collection>> = {
  insertOne: {
    args: ["document", "comment", "bypassDocumentValidation"],
    required: ["document"],
    run: async (c, a) => insertOneResult(await c.insertOne(doc(a.document), { ...optionsOf(a, "document"), ...keepNullIds([a.document]) })),
  },
  insertMany: {
    args: ["documents", "ordered", "comment", "bypassDocumentValidation"],
    required: ["documents"],
    run: async (c, a) => insertManyResult(await c.insertMany(a.documents as Document[], { ...optionsOf(a, "documents"), ...keepNullIds(a.documents) })),
  },
  updateOne: {
    args: ["filter", "update", "upsert", "arrayFilters", "sort", ...WRITE_COMMON],
    required: ["filter", "update"],
    run: async (c, a) => updateResult(await c.updateOne(doc(a.filter), a.update as Document, optionsOf(a, "filter", "update"))),
  },
  updateMany: {
    args: ["filter", "update", "upsert", "arrayFilters", ...WRITE_COMMON],
    required: ["filter", "update"],
    run: async (c, a) => updateResult(await c.updateMany(doc(a.filter), a.update as Document, optionsOf(a, "filter", "update"))),
  },
  replaceOne: {
    args: ["filter", "replacement", "upsert", "sort", ...WRITE_COMMON],
    required: ["filter", "replacement"],
    run: async (c, a) => updateResult(await c.replaceOne(doc(a.filter), doc(a.replacement), optionsOf(a, "filter", "replacement"))),
  },
  deleteOne: {
    args: ["filter", "comment", "let", "hint", "collation"],
    required: ["filter"],
    run: async (c, a) => deleteResult(await c.deleteOne(doc(a.filter), optionsOf(a, "filter"))),
  },
  deleteMany: {
    args: ["filter", "comment", "let", "hint", "collation"],
    required: ["filter"],
    run: async (c, a) => deleteResult(await c.deleteMany(doc(a.filter), optionsOf(a, "filter"))),
  },
  bulkWrite: {
    args: ["requests", "ordered", "comment", "let", "bypassDocumentValidation"],
    required: ["requests"],
    run: async (c, a) => {
      const inserted = Array.isArray(a.requests) ? a.requests.map((m: Document) => m.insertOne?.document).filter(Boolean) : [];
      return bulkWriteResult(await c.bulkWrite(bulkModels(a.requests), { ...optionsOf(a, "requests"), ...keepNullIds(inserted) }));
    },
  },
  find: {
    args: [
      "filter",
      "sort",
      "projection",
      "skip",
      "limit",
      "batchSize",
      "comment",
      "hint",
      "collation",
      "maxTimeMS",
      "allowDiskUse",
      "let",
      "min",
      "max",
      "returnKey",
      "showRecordId",
    ],
    returnsList: true,
    // Fully iterated, so every getMore the driver needs is part of the operation.
    run: (c, a) => c.find(doc(a.filter), optionsOf(a, "filter")).toArray(),
  },
  aggregate: {
    args: ["pipeline", "batchSize", "comment", "allowDiskUse", "let", "maxTimeMS", "collation", "hint", "bypassDocumentValidation"],
    required: ["pipeline"],
    returnsList: true,
    run: (c, a) => c.aggregate(a.pipeline as Document[], optionsOf(a, "pipeline")).toArray(),
  },
  findOneAndDelete: {
    args: ["filter", "projection", "sort", "comment", "let", "hint", "collation", "maxTimeMS"],
    required: ["filter"],
    run: (c, a) => c.findOneAndDelete(doc(a.filter), optionsOf(a, "filter")),
  },
  findOneAndReplace: {
    args: ["filter", "replacement", "projection", "sort", "upsert", "returnDocument", "maxTimeMS", ...WRITE_COMMON],
    required: ["filter", "replacement"],
    run: (c, a) =>
      c.findOneAndReplace(doc(a.filter), doc(a.replacement), {
        ...optionsOf(a, "filter", "replacement", "returnDocument"),
        returnDocument: returnDocument(a.returnDocument),
      }),
  },
  findOneAndUpdate: {
    args: ["filter", "update", "projection", "sort", "upsert", "returnDocument", "arrayFilters", "maxTimeMS", ...WRITE_COMMON],
    required: ["filter", "update"],
    run: (c, a) =>
      c.findOneAndUpdate(doc(a.filter), a.update as Document, {
        ...optionsOf(a, "filter", "update", "returnDocument"),
        returnDocument: returnDocument(a.returnDocument),
      }),
  },
  findOne: {
    args: [
      "filter",
      "sort",
      "projection",
      "skip",
      "comment",
      "hint",
      "collation",
      "maxTimeMS",
      "allowDiskUse",
      "let",
      "min",
      "max",
      "returnKey",
      "showRecordId",
    ],
    run: (c, a) => c.findOne(doc(a.filter), optionsOf(a, "filter")),
  },
  distinct: {
    args: ["fieldName", "filter", "comment", "collation", "maxTimeMS", "hint"],
    required: ["fieldName", "filter"],
    returnsList: true,
    run: (c, a) => c.distinct(String(a.fieldName), doc(a.filter), optionsOf(a, "fieldName", "filter")),
  },
  countDocuments: {
    args: ["filter", "skip", "limit", "comment", "collation", "hint", "maxTimeMS"],
    required: ["filter"],
    run: (c, a) => c.countDocuments(doc(a.filter), optionsOf(a, "filter")),
  },
  estimatedDocumentCount: {
    args: ["comment", "maxTimeMS"],
    run: (c, a) => c.estimatedDocumentCount(optionsOf(a)),
  },
  // The deprecated count helper: a `count` command with the filter as `query`.
  count: {
    args: ["filter", "skip", "limit", "comment", "collation", "hint", "maxTimeMS"],
    required: ["filter"],
    run: (c, a) => c.count(doc(a.filter), optionsOf(a, "filter")),
  },
  createIndex: {
    args: ["keys", "name", "unique", "sparse", "expireAfterSeconds", "hidden", "partialFilterExpression", "collation", "commitQuorum", "comment"],
    required: ["keys"],
    // Returns the index name (a string).
    run: (c, a) => c.createIndex(doc(a.keys), optionsOf(a, "keys")),
  },
  dropIndex: {
    args: ["name", "comment"],
    required: ["name"],
    run: async (c, a) => {
      await c.dropIndex(String(a.name), optionsOf(a, "name"));
      return undefined;
    },
  },
  rename: {
    args: ["to", "dropTarget"],
    required: ["to"],
    // The driver returns the new Collection object, which is no BSON value: report nothing.
    run: async (c, a) => {
      await c.rename(String(a.to), optionsOf(a, "to"));
      return undefined;
    },
  },
  createChangeStream: createChangeStream<Collection>(),
};

// --- database -------------------------------------------------------------

export const databaseOperations: Record<string, OperationDef<Db>> = {
  runCommand: {
    args: ["command", "commandName", "readPreference"],
    required: ["command", "commandName"],
    run: (db, a) => {
      const command = doc(a.command);
      // commandName exists for languages that lose key order; JS keeps it, so
      // just check the two agree.
      if (Object.keys(command)[0] !== a.commandName) throw new TestFileError(`runCommand commandName ${String(a.commandName)} is not the command's first key`);
      return db.command(command, {
        ...(a.readPreference ? { readPreference: toReadPreference(a.readPreference) } : {}),
        ...(a.session ? { session: a.session as ClientSession } : {}),
      });
    },
  },
  aggregate: {
    args: ["pipeline", "batchSize", "comment", "allowDiskUse", "let", "maxTimeMS", "bypassDocumentValidation"],
    required: ["pipeline"],
    returnsList: true,
    run: (db, a) => db.aggregate(a.pipeline as Document[], optionsOf(a, "pipeline")).toArray(),
  },
  createCollection: {
    args: [
      "collection",
      "viewOn",
      "pipeline",
      "validator",
      "validationLevel",
      "validationAction",
      "changeStreamPreAndPostImages",
      "capped",
      "size",
      "max",
      "collation",
      "expireAfterSeconds",
      "timeseries",
      "clusteredIndex",
      "encryptedFields",
      "comment",
    ],
    required: ["collection"],
    // The driver returns the new Collection object, which is no BSON value: report nothing.
    run: async (db, a) => {
      await db.createCollection(String(a.collection), optionsOf(a, "collection"));
      return undefined;
    },
  },
  // UTF "modifyCollection": a collMod with the remaining arguments as its options.
  modifyCollection: {
    args: ["collection", "validator", "validationLevel", "validationAction", "changeStreamPreAndPostImages", "index", "expireAfterSeconds"],
    required: ["collection"],
    run: (db, a) => db.command({ collMod: String(a.collection), ...optionsOf(a, "collection") }),
  },
  dropCollection: {
    args: ["collection"],
    required: ["collection"],
    run: async (db, a) => {
      await db.dropCollection(String(a.collection), optionsOf(a, "collection"));
      return undefined;
    },
  },
  createChangeStream: createChangeStream<Db>(),
};

// --- client ---------------------------------------------------------------

export const clientOperations: Record<string, OperationDef<MongoClient>> = {
  createChangeStream: createChangeStream<MongoClient>(),
};

/** Check arguments against the definition before running anything. */
export function checkArguments(where: string, def: OperationDef<never>, args: Args): void {
  for (const key of Object.keys(args)) {
    // Every operation that talks to the server takes a session (resolved to the entity before this).
    if (key === "session") continue;
    if (!def.args.includes(key)) throw new UnimplementedError(`${where} argument ${key}`);
  }
  for (const key of def.required ?? []) if (!(key in args)) throw new TestFileError(`${where} needs argument ${key}`);
}
