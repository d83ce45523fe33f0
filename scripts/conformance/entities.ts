// The entity map of one test: clients (with command monitoring), databases,
// collections, and results saved with saveResultAsEntity (change streams).
// A fresh map is built for every test and torn down after it (spec "Entity Map").
import {
  type ChangeStream,
  type Collection,
  type CommandFailedEvent,
  type CommandStartedEvent,
  type CommandSucceededEvent,
  type Db,
  type Document,
  MongoClient,
  type MongoClientOptions,
  ReadPreference,
  type ReadPreferenceMode,
} from "mongodb";
import { deserialize, serialize } from "bson";
import { NotApplicable, TestFileError, UnimplementedError, withTimeout } from "./errors.js";
import type { Topology } from "./requirements.js";
import { type SessionEntity, createSession } from "./sessions.js";
import { applyUriOptions } from "./uri.js";

export type CommandEventType = "commandStartedEvent" | "commandSucceededEvent" | "commandFailedEvent";

export interface RecordedEvent {
  type: CommandEventType;
  commandName: string;
  databaseName: string;
  command?: Document;
  reply?: unknown;
  serverConnectionId: bigint | null;
  hasServiceId: boolean;
}

export interface ClientEntity {
  kind: "client";
  client: MongoClient;
  /** Command events observed while `recording` is on, already filtered. */
  events: RecordedEvent[];
  recording: boolean;
}

export type Entity =
  | ClientEntity
  | { kind: "database"; db: Db }
  | { kind: "collection"; collection: Collection }
  | { kind: "changeStream"; stream: ChangeStream }
  | SessionEntity
  | { kind: "value"; value: unknown };

export type EntityMap = Map<string, Entity>;

export function getEntity<K extends Entity["kind"]>(map: EntityMap, name: unknown, kind: K): Extract<Entity, { kind: K }> {
  const entity = map.get(String(name));
  if (!entity) throw new TestFileError(`no entity named ${String(name)}`);
  if (entity.kind !== kind) throw new TestFileError(`entity ${String(name)} is a ${entity.kind}, expected a ${kind}`);
  return entity as Extract<Entity, { kind: K }>;
}

export function addEntity(map: EntityMap, name: string, entity: Entity): void {
  if (map.has(name)) throw new TestFileError(`entity ${name} already exists`);
  map.set(name, entity);
}

export interface EntityContext {
  url: string;
  topology: Topology;
  /** Data-bearing members besides the primary. */
  secondaries: number;
}

/** Fields of an entity definition this runner understands; any other field
 *  fails the test rather than being ignored. */
function checkKeys(kind: string, def: Record<string, unknown>, known: string[]): void {
  for (const key of Object.keys(def)) if (!known.includes(key)) throw new UnimplementedError(`${kind}.${key}`);
}

export async function createEntities(defs: Record<string, unknown>[] | undefined, ctx: EntityContext, map: EntityMap): Promise<void> {
  for (const def of defs ?? []) {
    const kinds = Object.keys(def);
    if (kinds.length !== 1) throw new TestFileError(`entity definition must have exactly one key, got ${kinds.join(", ")}`);
    const kind = kinds[0];
    const spec = def[kind!] as Record<string, unknown>;
    const id = String(spec.id);
    switch (kind) {
      case "client":
        addEntity(map, id, await createClient(spec, ctx));
        break;
      case "database": {
        checkKeys("database", spec, ["id", "client", "databaseName", "databaseOptions"]);
        const { client } = getEntity(map, spec.client, "client");
        addEntity(map, id, { kind: "database", db: client.db(String(spec.databaseName), dbOrCollOptions(spec.databaseOptions)) });
        break;
      }
      case "collection": {
        checkKeys("collection", spec, ["id", "database", "collectionName", "collectionOptions"]);
        const { db } = getEntity(map, spec.database, "database");
        addEntity(map, id, { kind: "collection", collection: db.collection(String(spec.collectionName), dbOrCollOptions(spec.collectionOptions)) });
        break;
      }
      case "session": {
        const { client } = getEntity(map, spec.client, "client");
        addEntity(map, id, createSession(spec, client));
        break;
      }
      default:
        // bucket, thread, clientEncryption: not used by our suites.
        throw new UnimplementedError(`entity kind ${kind}`);
    }
  }
}

const OBSERVABLE: CommandEventType[] = ["commandStartedEvent", "commandSucceededEvent", "commandFailedEvent"];

// Command Logging and Monitoring spec, "Security": never observed unless
// observeSensitiveCommands is set.
const SENSITIVE = new Set(["authenticate", "saslstart", "saslcontinue", "getnonce", "createuser", "updateuser", "copydbgetnonce", "copydbsaslstart", "copydb"]);
const HELLO = new Set(["hello", "ismaster"]);

async function createClient(spec: Record<string, unknown>, ctx: EntityContext): Promise<ClientEntity> {
  checkKeys("client", spec, [
    "id",
    "uriOptions",
    "useMultipleMongoses",
    "observeEvents",
    "ignoreCommandMonitoringEvents",
    "observeSensitiveCommands",
    "serverApi",
  ]);
  if (spec.useMultipleMongoses !== undefined && (ctx.topology === "sharded" || ctx.topology === "load-balanced")) {
    // Only meaningful with several mongoses / load balancers; our backends are single-node.
    throw new UnimplementedError(`client.useMultipleMongoses on a ${ctx.topology} topology`);
  }
  const observe = new Set((spec.observeEvents as string[] | undefined) ?? []);
  for (const type of observe) if (!OBSERVABLE.includes(type as CommandEventType)) throw new UnimplementedError(`observeEvents ${type}`);
  const ignored = new Set([...((spec.ignoreCommandMonitoringEvents as string[] | undefined) ?? []), "configureFailPoint"]);
  const observeSensitive = spec.observeSensitiveCommands === true;

  const uriOptions = (spec.uriOptions as Record<string, unknown> | undefined) ?? {};
  const mode = Object.entries(uriOptions).find(([k]) => k.toLowerCase() === "readpreference")?.[1];
  if (typeof mode === "string" && !/^primary(preferred)?$/i.test(mode) && ctx.topology === "replicaset" && ctx.secondaries === 0) {
    // MongoClient.connect() selects a server with the client's read preference (topology.ts
    // connect), and a set without a secondary has none to offer: the client cannot even connect.
    throw new NotApplicable(`client ${String(spec.id)} has readPreference ${mode}: connecting it needs a secondary, and this replica set has none`);
  }
  const options: MongoClientOptions = { monitorCommands: true };
  // Fail fast when the backend is gone, unless the test chose its own timeout.
  if (!Object.keys(uriOptions).some((k) => k.toLowerCase() === "serverselectiontimeoutms")) options.serverSelectionTimeoutMS = 10_000;
  if (spec.serverApi) options.serverApi = spec.serverApi as MongoClientOptions["serverApi"];

  const client = new MongoClient(applyUriOptions(ctx.url, uriOptions), options);
  const entity: ClientEntity = { kind: "client", client, events: [], recording: true };

  const record = (type: CommandEventType, ev: CommandStartedEvent | CommandSucceededEvent | CommandFailedEvent) => {
    if (!entity.recording || !observe.has(type) || ignored.has(ev.commandName)) return;
    const name = ev.commandName.toLowerCase();
    if (!observeSensitive && SENSITIVE.has(name)) return;
    // hello is sensitive only when it carried speculativeAuthenticate; the
    // driver then redacts it to an empty document.
    if (!observeSensitive && HELLO.has(name) && "command" in ev && Object.keys(ev.command).length === 0) return;
    entity.events.push({
      type,
      commandName: ev.commandName,
      databaseName: ev.databaseName,
      // A copy as of now: the driver may change objects it sent afterwards (a transaction's
      // readConcern gains the next statement's afterClusterTime), and the event must show what was sent.
      command: "command" in ev ? asSent(ev.command) : undefined,
      reply: "reply" in ev ? ev.reply : undefined,
      serverConnectionId: ev.serverConnectionId,
      hasServiceId: ev.serviceId !== undefined && ev.serviceId !== null,
    });
  };
  client.on("commandStarted", (ev) => record("commandStartedEvent", ev));
  client.on("commandSucceeded", (ev) => record("commandSucceededEvent", ev));
  client.on("commandFailed", (ev) => record("commandFailedEvent", ev));

  await client.connect();
  return entity;
}

function asSent(command: Document): Document {
  return deserialize(serialize(command), { promoteLongs: false });
}

/** collectionOrDatabaseOptions -> driver options. */
function dbOrCollOptions(raw: unknown): Record<string, unknown> {
  if (raw === undefined) return {};
  const opts = raw as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(opts)) {
    switch (key) {
      case "readConcern":
        out.readConcern = value;
        break;
      case "writeConcern":
        out.writeConcern = value;
        break;
      case "readPreference":
        out.readPreference = toReadPreference(value);
        break;
      default:
        throw new UnimplementedError(`collectionOrDatabaseOptions.${key}`);
    }
  }
  return out;
}

export function toReadPreference(raw: unknown): ReadPreference {
  const rp = raw as { mode: string; tagSets?: Document[]; maxStalenessSeconds?: number; hedge?: Document };
  const mode = rp.mode.charAt(0).toLowerCase() + rp.mode.slice(1);
  return new ReadPreference(mode as ReadPreferenceMode, rp.tagSets, { maxStalenessSeconds: rp.maxStalenessSeconds, hedge: rp.hedge });
}

export function stopRecording(map: EntityMap): void {
  for (const entity of map.values()) if (entity.kind === "client") entity.recording = false;
}

/** Close change streams, then clients. Errors are swallowed: cleanup must not
 *  hide the test's own result, and a dead backend must not hang the run. */
export async function closeEntities(map: EntityMap): Promise<void> {
  for (const entity of map.values()) {
    if (entity.kind === "changeStream") await withTimeout("close change stream", 5_000, () => entity.stream.close()).catch(() => undefined);
  }
  // Sessions before their clients: ending one aborts its open transaction on the server.
  for (const entity of map.values()) {
    if (entity.kind === "session") await withTimeout("end session", 5_000, () => entity.session.endSession()).catch(() => undefined);
  }
  for (const entity of map.values()) {
    if (entity.kind === "client") await withTimeout("close client", 5_000, () => entity.client.close()).catch(() => undefined);
  }
  map.clear();
}
