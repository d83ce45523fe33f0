/**
 * Shared plumbing for the simulator's test suite. Everything goes through
 * `startTestBackend()` and the real `MongoClient`, so the same tests run
 * against a real mongod (FLOWSYNC_MONGO=mongod / MONGO_URL) unchanged.
 *
 * On a shared mongod the test files run concurrently, so anything global to
 * the server (fail points) is scoped with a per-client `appName`.
 */
import { expect, inject } from "vitest";
import {
  MongoClient,
  MongoServerError,
  type ChangeStream,
  type ChangeStreamOptions,
  type Collection,
  type Db,
  type Document,
  type MongoClientOptions,
  type TopologyDescription,
} from "mongodb";
import { eventually } from "../support/eventually";

export { uniqueDb, useBackend, type Harness } from "../support/backend";

/** The backend this run uses, known at collection time (for `it.runIf` on simulator-only knobs). */
export const backendKind = inject("backend").kind;
export const isSim = backendKind === "sim";

/** Default await time for streams in tests: short, so idle getMores come back quickly. */
export const AWAIT_MS = 100;

/**
 * Opens a change stream and makes sure the server has started it (the driver
 * sends the aggregate lazily), so that writes made afterwards are in it.
 */
export async function openStream(
  target: Collection<AnyDoc> | Db | MongoClient,
  pipeline: Document[] = [],
  options: ChangeStreamOptions = {},
): Promise<ChangeStream<Document, Document>> {
  const stream = (target as Collection<AnyDoc>).watch(pipeline, { maxAwaitTimeMS: AWAIT_MS, ...options }) as unknown as ChangeStream<Document, Document>;
  const first = await stream.tryNext();
  if (first !== null) throw new Error(`stream opened with an unexpected event: ${JSON.stringify(first)}`);
  return stream;
}

/**
 * Opens a change stream with a long await and starts reading: resolves once the
 * server has opened the stream (its first, empty batch has come back), with the
 * pending first `next()`, whose getMore now waits on the server. For streams
 * whose maxAwaitTimeMS is too long for `openStream`'s idle probe.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function startReading(stream: ChangeStream<any, any>): Promise<{ first: Promise<Document> }> {
  // The driver caches the aggregate's postBatchResumeToken when the first batch is empty.
  const opened = new Promise<void>((resolve) => stream.once("resumeTokenChanged", () => resolve()));
  const first: Promise<Document> = stream.next();
  await Promise.race([opened, first]);
  return { first };
}

/** The next `n` change events, in order (each `next()` may await new events). */
export async function nextEvents(stream: ChangeStream<Document, Document>, n: number): Promise<Document[]> {
  const out: Document[] = [];
  while (out.length < n) out.push(await stream.next());
  return out;
}

/** Asserts that `p` rejects with a server error carrying `code`; returns the error. */
export async function expectCode(p: Promise<unknown>, code: number): Promise<MongoServerError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected server error ${code}`).toBeInstanceOf(MongoServerError);
  expect((err as MongoServerError).code).toBe(code);
  return err as MongoServerError;
}

/** configureFailPoint on admin, scoped to `appName` (real mongod's fail points are server-global). */
export async function failPoint(client: MongoClient, name: string, mode: unknown, data: Document, appName: string): Promise<Document> {
  return client.db("admin").command({ configureFailPoint: name, mode, data: { ...data, appName } });
}

export async function failPointOff(client: MongoClient, name: string): Promise<void> {
  await client.db("admin").command({ configureFailPoint: name, mode: "off" });
}

/** Command names started by a monitored client, from now on (call the result to stop recording). */
export function recordCommands(client: MongoClient, events: "commandStarted" | "commandSucceeded" = "commandStarted") {
  const seen: Document[] = [];
  const listener = (e: Document) => seen.push(e);
  client.on(events, listener);
  return {
    seen,
    names: () => seen.map((e) => e.commandName as string),
    stop: () => client.off(events, listener),
  };
}

/** Documents with any `_id` type (the driver's default schema types `_id` as ObjectId). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyDoc = { _id?: string | number | object; [key: string]: any };

export function coll(db: Db, name: string) {
  return db.collection<AnyDoc>(name);
}

/** Connects a fresh client and returns the topology description it settled on (from SDAM events). */
export async function topologyOf(url: string, options: MongoClientOptions = {}): Promise<TopologyDescription> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000, ...options });
  let last: TopologyDescription | undefined;
  client.on("topologyDescriptionChanged", (e) => (last = e.newDescription));
  try {
    await client.connect();
    await client.db("admin").command({ ping: 1 });
    return last!;
  } finally {
    await client.close();
  }
}

/**
 * Inserts documents one by one, retrying through the transient errors a network
 * fault leaves behind (the driver retries a write once; a cut can outlast that).
 * A duplicate key on a retry means the earlier attempt went through.
 */
export async function insertThroughFaults(c: Collection<AnyDoc>, docs: AnyDoc[], ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  for (const doc of docs) {
    for (;;) {
      try {
        await c.insertOne(doc);
        break;
      } catch (err) {
        if (err instanceof MongoServerError && err.code === 11000) break;
        // Network-level failures surface as MongoNetworkError or, on a reset mid-write, as a raw socket error.
        if (Date.now() > until || err instanceof MongoServerError) throw err;
        await sleep(50);
      }
    }
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once a getMore on `ns` is waiting at the server, as `observer` sees it in $currentOp. */
export async function getMoreWaiting(observer: MongoClient, ns: string): Promise<void> {
  const waiting = async () =>
    (
      await observer
        .db("admin")
        .aggregate([{ $currentOp: { allUsers: true } }, { $match: { ns, "command.getMore": { $exists: true } } }])
        .toArray()
    ).length > 0;
  await eventually(`a getMore waiting on ${ns}`, waiting);
}
