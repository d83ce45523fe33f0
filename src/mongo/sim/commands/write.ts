/** insert, update, delete, findAndModify (docs/mongodb.md#write-replies). */
import { Query } from "mingo";
import { calculateObjectSize, ObjectId, type Document } from "bson";
import { applyUpdate, updateKind, upsertDocument, withIdFirst } from "../apply-update";
import { copyDeep } from "../immutable";
import { clone, collectionName, type Ctx, type Handler } from "../context";
import { Codes, engineError, fail, type ServerError } from "../errors";
import { valueKey, type Collection } from "../store";
import type { Data } from "../transactions";
import { describeOperatorUpdate, describeUpdate } from "../update-description";
import { checkIdField, checkValidator } from "../validation";
import { letVariables } from "../variables";

/**
 * Thrown by a statement, before it changes anything, when a document it would write is held by
 * an open transaction: mongod's writer retries its write conflict until that transaction ends.
 */
class Blocked {
  constructor(readonly until: Promise<void>) {}
}

/** Outside a transaction, a write to documents a transaction holds waits for it (first writer wins). */
function waitForLocks(ctx: Ctx, db: string, coll: string, ids: unknown[]): void {
  if (ctx.txn) return; // a transaction's own writes take the locks instead (WriteConflict when held)
  const until = ctx.server.sessions.blocking(db, coll, ids);
  if (until) throw new Blocked(until);
}

/** Runs each statement, collecting write errors; ordered writes stop at the first. */
async function eachStatement<T>(statements: T[], ordered: boolean, run: (s: T, index: number) => void): Promise<Document[]> {
  const errors: Document[] = [];
  for (let index = 0; index < statements.length; index++) {
    // Synchronous unless a statement must wait: one command's statements are one step of the
    // event loop, so no reader (a change stream's getMore) sees a multi-document write half done.
    let failed = attempt(() => run(statements[index]!, index));
    while (failed instanceof Blocked) {
      await failed.until;
      failed = attempt(() => run(statements[index]!, index));
    }
    if (!failed) continue;
    errors.push(failed.toWriteError(index));
    if (ordered) break;
  }
  return errors;
}

/** Runs one statement: its write error if any, or what it must wait for before it runs again. */
function attempt(run: () => void): ServerError | Blocked | undefined {
  try {
    run();
    return undefined;
  } catch (thrown) {
    if (thrown instanceof Blocked) return thrown;
    const err = engineError(thrown);
    // A write conflict fails the whole command (and its transaction), not one statement.
    if (err.code === Codes.InternalError || err.code === Codes.WriteConflict) throw thrown;
    return err;
  }
}

/** Writes to a view fail whether or not anything matches (the store refuses them too). */
function notAView(db: string, coll: Collection | undefined): void {
  if (coll?.view) fail(Codes.CommandNotSupportedOnView, `Namespace ${db}.${coll.name} is a view, not a collection`);
}

function reply(fields: Document, errors: Document[]): Document {
  // An empty writeErrors array makes the driver throw: leave it out (docs/mongodb.md#write-replies).
  return errors.length > 0 ? { ...fields, writeErrors: errors, ok: 1 } : { ...fields, ok: 1 };
}

function matching(coll: Collection | undefined, filter: Document, sort?: Document, variables?: Document): Document[] {
  if (!coll) return [];
  const cursor = new Query(filter ?? {}, { variables }).find([...coll.docs.values()]);
  return (sort && Object.keys(sort).length > 0 ? cursor.sort(sort as never) : cursor).all() as Document[];
}

export const insert: Handler = async (cmd, db, ctx) => {
  const { data } = ctx;
  const name = collectionName(cmd, "insert");
  const docs = cmd.documents as Document[];
  if (!Array.isArray(docs)) fail(Codes.TypeMismatch, "insert: 'documents' must be an array");
  let n = 0;
  const bypass = cmd.bypassDocumentValidation === true;
  const errors = await eachStatement(docs, cmd.ordered !== false, (doc) => {
    const coll = data.ensure(db, name);
    notAView(db, coll);
    const stored = withIdFirst(clone(doc._id === undefined ? { _id: new ObjectId(), ...doc } : doc));
    checkIdField(stored._id);
    checkValidator(coll, stored, undefined, bypass);
    waitForLocks(ctx, db, name, [stored._id]);
    data.insert(db, coll, stored);
    n++;
  });
  return reply({ n }, errors);
};

export const update: Handler = async (cmd, db, ctx) => {
  const { data } = ctx;
  const name = collectionName(cmd, "update");
  const statements = cmd.updates as Document[];
  if (!Array.isArray(statements)) fail(Codes.TypeMismatch, "update: 'updates' must be an array");
  let n = 0;
  let nModified = 0;
  const upserted: Document[] = [];
  const bypass = cmd.bypassDocumentValidation === true;
  const commandVariables = letVariables(cmd);
  const errors = await eachStatement(statements, cmd.ordered !== false, (s, index) => {
    if (s.collation) fail(Codes.NotImplemented, "collation is not implemented by the flowsync MongoDB simulator");
    // `c`: a statement's own constants for a pipeline update, next to the command's `let`.
    const variables = commandVariables || s.c ? { ...commandVariables, ...(s.c as Document | undefined) } : undefined;
    const coll = data.get(db, name);
    notAView(db, coll);
    const targets = matching(coll, s.q, s.sort, variables);
    const chosen = s.multi ? targets : targets.slice(0, 1);
    if (chosen.length === 0 && s.upsert) {
      const doc = upsertDocument(s.q ?? {}, s.u, s.arrayFilters, variables);
      const target = data.ensure(db, name);
      checkIdField(doc._id);
      checkValidator(target, doc, undefined, bypass);
      waitForLocks(ctx, db, name, [doc._id]);
      data.insert(db, target, doc);
      upserted.push({ index, _id: doc._id });
      n++;
      return;
    }
    if (s.multi && updateKind(s.u) === "replacement") fail(Codes.FailedToParse, "multi update is not supported for replacement-style update");
    // All of them or none: a statement that waits must not have written part of its documents.
    waitForLocks(
      ctx,
      db,
      name,
      chosen.map((d) => d._id),
    );
    for (const before of chosen) {
      const after = applyUpdate(before, s.u, { arrayFilters: s.arrayFilters, query: s.q, variables });
      checkValidator(coll!, after, before, bypass);
      n++;
      if (writeVersion(data, db, coll!, before, after, s.u, s.arrayFilters)) nModified++;
    }
  });
  return reply(upserted.length > 0 ? { n, nModified, upserted } : { n, nModified }, errors);
};

export const remove: Handler = async (cmd, db, ctx) => {
  const { data } = ctx;
  const name = collectionName(cmd, "delete");
  const statements = cmd.deletes as Document[];
  if (!Array.isArray(statements)) fail(Codes.TypeMismatch, "delete: 'deletes' must be an array");
  let n = 0;
  const variables = letVariables(cmd);
  const errors = await eachStatement(statements, cmd.ordered !== false, (s) => {
    if (s.collation) fail(Codes.NotImplemented, "collation is not implemented by the flowsync MongoDB simulator");
    const coll = data.get(db, name);
    notAView(db, coll);
    const targets = matching(coll, s.q, undefined, variables);
    const chosen = s.limit === 1 ? targets.slice(0, 1) : targets;
    waitForLocks(
      ctx,
      db,
      name,
      chosen.map((d) => d._id),
    );
    for (const doc of chosen) {
      data.remove(db, coll!, doc);
      n++;
    }
  });
  return reply({ n }, errors);
};

export const findAndModify: Handler = async (cmd, db, ctx) => {
  for (;;) {
    try {
      return findAndModifyOnce(cmd, db, ctx);
    } catch (thrown) {
      if (!(thrown instanceof Blocked)) throw thrown;
      await thrown.until;
    }
  }
};

function findAndModifyOnce(cmd: Document, db: string, ctx: Ctx): Document {
  const { data } = ctx;
  const name = collectionName(cmd, "findAndModify");
  if (cmd.collation) fail(Codes.NotImplemented, "collation is not implemented by the flowsync MongoDB simulator");
  if (cmd.remove && cmd.update !== undefined) fail(Codes.FailedToParse, "Cannot specify both an update and remove=true");
  if (!cmd.remove && cmd.update === undefined) fail(Codes.FailedToParse, "Either an update or remove=true must be specified");
  const coll = data.get(db, name);
  notAView(db, coll);
  const variables = letVariables(cmd);
  const bypass = cmd.bypassDocumentValidation === true;
  const [before] = matching(coll, cmd.query ?? {}, cmd.sort, variables);
  if (before) waitForLocks(ctx, db, name, [before._id]);
  const project = (doc: Document | null) => (doc && cmd.fields ? (new Query({}).find([copyDeep(doc)], cmd.fields).all()[0] as Document) : doc);

  if (cmd.remove) {
    if (before) data.remove(db, coll!, before);
    return { lastErrorObject: { n: before ? 1 : 0 }, value: project(before ?? null), ok: 1 };
  }
  if (!before) {
    if (!cmd.upsert) return { lastErrorObject: { n: 0, updatedExisting: false }, value: null, ok: 1 };
    const doc = upsertDocument(cmd.query ?? {}, cmd.update, cmd.arrayFilters, variables);
    const target = data.ensure(db, name);
    checkIdField(doc._id);
    checkValidator(target, doc, undefined, bypass);
    waitForLocks(ctx, db, name, [doc._id]);
    data.insert(db, target, doc);
    return { lastErrorObject: { n: 1, updatedExisting: false, upserted: doc._id }, value: project(cmd.new ? doc : null), ok: 1 };
  }
  const after = applyUpdate(before, cmd.update, { arrayFilters: cmd.arrayFilters, query: cmd.query, variables });
  checkValidator(coll!, after, before, bypass);
  writeVersion(data, db, coll!, before, after, cmd.update, cmd.arrayFilters);
  return { lastErrorObject: { n: 1, updatedExisting: true }, value: project(cmd.new ? after : before), ok: 1 };
}

/** Stores `after` if it differs from `before` (a no-op write is not logged, as in MongoDB). */
function writeVersion(store: Data, db: string, coll: Collection, before: Document, after: Document, u: unknown, arrayFilters?: Document[]): boolean {
  if (valueKey(before) === valueKey(after)) return false;
  const kind = updateKind(u);
  if (kind === "replacement") {
    store.write(db, coll, before, after, { op: "replace" });
    return true;
  }
  if (kind === "pipeline" && !deltaIsSmaller(before, after)) {
    store.write(db, coll, before, after, { op: "replace" });
    return true;
  }
  let updateDescription = kind === "pipeline" ? describeUpdate(before, after) : describeOperatorUpdate(before, after, u as Document, arrayFilters);
  // The document changed, so the event must say how: should the operator paths not resolve
  // (an update form describeOperatorUpdate does not know), fall back to the plain diff.
  if (Object.keys(updateDescription.updatedFields).length + updateDescription.removedFields.length === 0) updateDescription = describeUpdate(before, after);
  store.write(db, coll, before, after, { op: "update", updateDescription });
  return true;
}

/**
 * mongod logs a pipeline update as a delta ("$v: 2" oplog entry, an `update`
 * event) only when the delta is smaller than the new document; otherwise it logs
 * the whole new document, which change streams report as a `replace`
 * (doc_diff::computeOplogDiff: `diff.objsize() < post.objsize()`). The delta's
 * size is estimated from its parts: updated and inserted fields with their values,
 * removed field names, and truncated arrays.
 */
function deltaIsSmaller(before: Document, after: Document): boolean {
  const d = describeUpdate(before, after);
  const delta: Document = {};
  if (Object.keys(d.updatedFields).length > 0) delta.u = d.updatedFields;
  if (d.removedFields.length > 0) delta.d = Object.fromEntries(d.removedFields.map((f) => [f, false]));
  if (d.truncatedArrays.length > 0) delta.t = Object.fromEntries(d.truncatedArrays.map((t) => [t.field, t.newSize]));
  return calculateObjectSize(delta) < calculateObjectSize(after);
}
