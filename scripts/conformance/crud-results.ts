// Driver result models -> plain documents for expectResult (spec "Converting
// Returned Model Objects to Documents"). Field names follow the CRUD spec;
// fields the spec calls optional are left out when the driver has no value.
import type { BulkWriteResult, DeleteResult, InsertManyResult, InsertOneResult, UpdateResult } from "mongodb";

type Doc = Record<string, unknown>;

/** Index-keyed maps (insertedIds, upsertedIds) as documents with string keys. */
function indexMap(map: Record<number, unknown> | undefined): Doc {
  const out: Doc = {};
  for (const [k, v] of Object.entries(map ?? {})) out[String(k)] = v;
  return out;
}

export function insertOneResult(r: InsertOneResult): Doc {
  return { insertedId: r.insertedId };
}

export function insertManyResult(r: InsertManyResult): Doc {
  return { insertedCount: r.insertedCount, insertedIds: indexMap(r.insertedIds) };
}

export function updateResult(r: UpdateResult): Doc {
  const out: Doc = { matchedCount: r.matchedCount, modifiedCount: r.modifiedCount, upsertedCount: r.upsertedCount };
  if (r.upsertedId !== null && r.upsertedId !== undefined) out.upsertedId = r.upsertedId;
  return out;
}

export function deleteResult(r: DeleteResult): Doc {
  return { deletedCount: r.deletedCount };
}

export function bulkWriteResult(r: BulkWriteResult): Doc {
  return {
    insertedCount: r.insertedCount,
    matchedCount: r.matchedCount,
    modifiedCount: r.modifiedCount,
    deletedCount: r.deletedCount,
    upsertedCount: r.upsertedCount,
    upsertedIds: indexMap(r.upsertedIds),
    insertedIds: indexMap(r.insertedIds),
  };
}
