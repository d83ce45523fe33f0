// Executing one test (spec "Executing a Test"): initialData, entities,
// operations, then fail points off, expectEvents, outcome, cleanup.
import { ChangeStream, type Document, type MongoClient, MongoServerError } from "mongodb";
import { show } from "./bson-values.js";
import { type EntityMap, addEntity, closeEntities, createEntities, getEntity, stopRecording } from "./entities.js";
import { AssertionFailure, DriverDeviationError, NotApplicable, TestFileError, UnimplementedError, describeError, withTimeout } from "./errors.js";
import { type DriverDeviation, withoutDeviations } from "./driver-deviations.js";
import { matchClientEvents } from "./events.js";
import { checkExpectedError } from "./expect-error.js";
import type { CollectionData, Operation, UnifiedFile, UnifiedTest } from "./loader.js";
import { match, matchExact, matchRootList } from "./matcher.js";
import { type OperationDef, changeStreamOperations, checkArguments, clientOperations, collectionOperations, databaseOperations } from "./operations.js";
import type { Topology } from "./requirements.js";
import { assertTransactionState, pinnedServer, sessionArgument, sessionOperations } from "./sessions.js";

/** Long enough for a change stream to see its event through a few empty
 *  getMores; short enough that a backend that never answers costs one test. */
const OPERATION_TIMEOUT_MS = 15_000;
const SETUP_TIMEOUT_MS = 15_000;
const MAJORITY = { w: "majority" } as const;

export interface TestEnv {
  url: string;
  topology: Topology;
  secondaries: number;
  /** The internal client: initialData, outcome. Never observed. */
  internal: MongoClient;
}

interface FailPointRecord {
  client: MongoClient;
  name: string;
}

interface TestState {
  env: TestEnv;
  entities: EntityMap;
  failPoints: FailPointRecord[];
  unsaved: number;
}

const TEST_KEYS = ["description", "runOnRequirements", "skipReason", "operations", "expectEvents", "outcome"];
const OPERATION_KEYS = ["name", "object", "arguments", "expectError", "expectResult", "saveResultAsEntity", "ignoreResultAndError"];

/** Runs the test; resolves to null on success, the failure message, or why it cannot run here. */
export async function runTest(file: UnifiedFile, test: UnifiedTest, env: TestEnv): Promise<string | null | NotApplicable | DriverDeviationError> {
  const state: TestState = { env, entities: new Map(), failPoints: [], unsaved: 0 };
  const deviations: DriverDeviation[] = [];
  let failure: unknown;
  try {
    for (const key of Object.keys(test)) if (!TEST_KEYS.includes(key)) throw new UnimplementedError(`test.${key}`);
    await withTimeout("initialData", SETUP_TIMEOUT_MS, () => loadCollections(env.internal, file.initialData ?? []));
    await withTimeout("createEntities", SETUP_TIMEOUT_MS, () => createEntities(file.createEntities, env, state.entities));
    for (const [i, op] of test.operations.entries()) {
      try {
        await runOperation(op, state);
      } catch (err) {
        throw prefixed(`operation ${i} (${op.object}.${op.name})`, err);
      }
    }
  } catch (err) {
    failure = err;
  }

  stopRecording(state.entities);
  const offFailure = await disableFailPoints(state.failPoints);
  failure ??= offFailure;

  if (failure === undefined) {
    try {
      const lsidOf = (id: string) => getEntity(state.entities, id, "session").lsid;
      for (const expected of test.expectEvents ?? []) {
        const { events } = getEntity(state.entities, expected.client, "client");
        const mismatch = matchClientEvents(expected, events, lsidOf);
        if (!mismatch) continue;
        // Only a mismatch that a known driver deviation fully explains is forgiven (and reported).
        const fixed = withoutDeviations((expected.events as Record<string, unknown>[] | undefined) ?? [], events);
        if (fixed.used.length === 0 || matchClientEvents(expected, fixed.events, lsidOf) !== null) throw new AssertionFailure(mismatch);
        for (const d of fixed.used) if (!deviations.includes(d)) deviations.push(d);
      }
      if (test.outcome) await withTimeout("outcome", SETUP_TIMEOUT_MS, () => checkOutcome(env.internal, test.outcome ?? []));
    } catch (err) {
      failure = err;
    }
  }

  await closeEntities(state.entities);
  if (failure instanceof NotApplicable) return failure;
  if (failure === undefined && deviations.length > 0) {
    return new DriverDeviationError(`everything else matched: ${deviations.map((d) => `${d.id}: ${d.what}`).join("; ")}`);
  }
  return failure === undefined ? null : describeError(failure);
}

function prefixed(where: string, err: unknown): Error {
  if (err instanceof NotApplicable) return err;
  return new AssertionFailure(`${where}: ${describeError(err)}`);
}

/** initialData: drop, optionally create with options, insert, all with
 *  majority write concern through the internal client. */
async function loadCollections(internal: MongoClient, collections: CollectionData[]): Promise<void> {
  for (const data of collections) {
    const db = internal.db(data.databaseName);
    try {
      await db.command({ drop: data.collectionName, writeConcern: MAJORITY });
    } catch (err) {
      // NamespaceNotFound: servers before 7.0 refuse to drop what isn't there.
      if (!(err instanceof MongoServerError && err.code === 26)) throw err;
    }
    if (data.createOptions) await db.command({ create: data.collectionName, ...data.createOptions, writeConcern: MAJORITY });
    if (data.documents.length > 0) {
      await db.collection(data.collectionName).insertMany(data.documents as Document[], { writeConcern: MAJORITY });
    } else if (!data.createOptions) {
      await db.command({ create: data.collectionName, writeConcern: MAJORITY });
    }
  }
}

/** outcome: exact contents, sorted by _id, primary, read concern "local". */
async function checkOutcome(internal: MongoClient, collections: CollectionData[]): Promise<void> {
  for (const data of collections) {
    const docs = await internal
      .db(data.databaseName)
      .collection(data.collectionName)
      .find({}, { sort: { _id: 1 }, readPreference: "primary", readConcern: { level: "local" } })
      .toArray();
    const mismatch = matchExact(data.documents, docs);
    if (mismatch) throw new AssertionFailure(`outcome ${data.databaseName}.${data.collectionName}: ${mismatch}`);
  }
}

async function disableFailPoints(failPoints: FailPointRecord[]): Promise<unknown> {
  let failure: unknown;
  for (const fp of failPoints) {
    try {
      await withTimeout(`turn fail point ${fp.name} off`, SETUP_TIMEOUT_MS, () => fp.client.db("admin").command({ configureFailPoint: fp.name, mode: "off" }));
    } catch (err) {
      // A fail point left on would break later tests: report it.
      failure ??= new AssertionFailure(`could not turn fail point ${fp.name} off: ${describeError(err)}`);
    }
  }
  return failure;
}

// --- operations -------------------------------------------------------------

async function runOperation(op: Operation, state: TestState): Promise<void> {
  for (const key of Object.keys(op)) if (!OPERATION_KEYS.includes(key)) throw new UnimplementedError(`operation.${key}`);
  if (op.object === "testRunner") return runSpecialOperation(op, state);

  const { def, execute } = resolveOperation(op, state.entities);
  const args = { ...(op.arguments ?? {}) };
  checkArguments(`${op.object}.${op.name}`, def as OperationDef<never>, args);
  if ("session" in args) args.session = sessionArgument(args.session, (id) => getEntity(state.entities, id, "session"));

  let result: unknown;
  let error: unknown;
  let threw = false;
  try {
    result = await withTimeout("operation", OPERATION_TIMEOUT_MS, () => execute(args));
  } catch (err) {
    // Our own failures (timeout, unimplemented) are never "the expected error".
    if (err instanceof AssertionFailure || err instanceof UnimplementedError || err instanceof TestFileError) throw err;
    error = err;
    threw = true;
  }

  if (result instanceof ChangeStream && op.saveResultAsEntity === undefined) {
    // Keep it so that cleanup closes it.
    addEntity(state.entities, `__unsaved${state.unsaved++}`, { kind: "changeStream", stream: result });
  }
  if (op.ignoreResultAndError) return;
  if (op.expectError) {
    if (!threw) throw new AssertionFailure(`expected an error, got result ${show(result)}`);
    checkExpectedError(op.expectError, error);
    return;
  }
  if (threw) throw new AssertionFailure(`unexpected error: ${describeError(error)}`);
  if (op.expectResult !== undefined) {
    const mismatch = def.returnsList ? matchRootList(op.expectResult, result) : match(op.expectResult, result, { root: true });
    if (mismatch) throw new AssertionFailure(`expectResult: ${mismatch}`);
  }
  if (op.saveResultAsEntity !== undefined) {
    if (result === undefined) throw new TestFileError(`saveResultAsEntity ${op.saveResultAsEntity}: the operation returned nothing`);
    addEntity(
      state.entities,
      op.saveResultAsEntity,
      result instanceof ChangeStream ? { kind: "changeStream", stream: result } : { kind: "value", value: result },
    );
  }
}

function resolveOperation(op: Operation, entities: EntityMap): { def: OperationDef<unknown>; execute: (args: Record<string, unknown>) => Promise<unknown> } {
  const entity = entities.get(op.object);
  if (!entity) throw new TestFileError(`no entity named ${op.object}`);
  const pick = <T>(table: Record<string, OperationDef<T>>, target: T) => {
    const def = Object.prototype.hasOwnProperty.call(table, op.name) ? table[op.name] : undefined;
    if (!def) throw new UnimplementedError(`${entity.kind} operation ${op.name}`);
    return { def: def as OperationDef<unknown>, execute: (args: Record<string, unknown>) => def.run(target, args) };
  };
  switch (entity.kind) {
    case "collection":
      return pick(collectionOperations, entity.collection);
    case "database":
      return pick(databaseOperations, entity.db);
    case "client":
      return pick(clientOperations, entity.client);
    case "changeStream":
      return pick(changeStreamOperations, entity.stream);
    case "session":
      return pick(sessionOperations, entity);
    default:
      throw new UnimplementedError(`operations on ${entity.kind} entities`);
  }
}

/** `object: testRunner` operations (spec "Special Test Operations"). */
async function runSpecialOperation(op: Operation, state: TestState): Promise<void> {
  const args = op.arguments ?? {};
  const allow = (...keys: string[]) => {
    for (const key of Object.keys(args)) if (!keys.includes(key)) throw new UnimplementedError(`${op.name} argument ${key}`);
  };
  switch (op.name) {
    case "failPoint": {
      allow("client", "failPoint");
      const { client } = getEntity(state.entities, args.client, "client");
      return configureFailPoint(client, args.failPoint as Document, state);
    }
    case "targetedFailPoint": {
      // The session's pinned mongos; on a replica set a session is never pinned and every
      // command goes to the primary, which is where the runner's client sends it too.
      allow("session", "failPoint");
      const session = getEntity(state.entities, args.session, "session");
      if (pinnedServer(session) !== undefined) throw new UnimplementedError("targetedFailPoint on a pinned (sharded) session");
      if (state.env.topology !== "replicaset" && state.env.topology !== "single")
        throw new UnimplementedError(`targetedFailPoint on a ${state.env.topology} topology`);
      return configureFailPoint(session.client, args.failPoint as Document, state);
    }
    case "createEntities":
      allow("entities");
      return withTimeout("createEntities", SETUP_TIMEOUT_MS, () => createEntities(args.entities as Document[], state.env, state.entities));
    case "assertSessionTransactionState": {
      allow("session", "state");
      return assertTransactionState(getEntity(state.entities, args.session, "session"), args.state);
    }
    case "assertSessionPinned":
    case "assertSessionUnpinned": {
      allow("session");
      const pinned = pinnedServer(getEntity(state.entities, args.session, "session")) !== undefined;
      if (pinned !== (op.name === "assertSessionPinned")) throw new AssertionFailure(`session ${String(args.session)} is ${pinned ? "" : "not "}pinned`);
      return;
    }
    case "assertCollectionExists":
    case "assertCollectionNotExists": {
      allow("databaseName", "collectionName");
      const names = await withTimeout("listCollections", SETUP_TIMEOUT_MS, () =>
        state.env.internal
          .db(String(args.databaseName))
          .listCollections({ name: String(args.collectionName) }, { nameOnly: true })
          .toArray(),
      );
      const exists = names.length > 0;
      if (exists !== (op.name === "assertCollectionExists")) {
        throw new AssertionFailure(`collection ${String(args.databaseName)}.${String(args.collectionName)} ${exists ? "exists" : "does not exist"}`);
      }
      return;
    }
    case "assertIndexExists":
    case "assertIndexNotExists": {
      allow("databaseName", "collectionName", "indexName");
      const indexes = await withTimeout("listIndexes", SETUP_TIMEOUT_MS, () =>
        state.env.internal.db(String(args.databaseName)).collection(String(args.collectionName)).listIndexes().toArray(),
      ).catch((err: unknown) => {
        // NamespaceNotFound: no collection, so no index.
        if (err instanceof MongoServerError && err.code === 26) return [];
        throw err;
      });
      const exists = indexes.some((i) => i.name === args.indexName);
      if (exists !== (op.name === "assertIndexExists")) {
        throw new AssertionFailure(
          `index ${String(args.indexName)} on ${String(args.databaseName)}.${String(args.collectionName)} ${exists ? "exists" : "does not exist"}`,
        );
      }
      return;
    }
    default:
      throw new UnimplementedError(`testRunner operation ${op.name}`);
  }
}

async function configureFailPoint(client: MongoClient, command: Document, state: TestState): Promise<void> {
  if (typeof command?.configureFailPoint !== "string") throw new TestFileError("failPoint needs a configureFailPoint command");
  // Recorded before running: even a half-applied fail point gets turned off.
  state.failPoints.push({ client, name: command.configureFailPoint });
  await withTimeout("configureFailPoint", SETUP_TIMEOUT_MS, () => client.db("admin").command(command));
}
