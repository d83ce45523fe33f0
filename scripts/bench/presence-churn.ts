/**
 * Presence under churn: two flowsync instances (PRESENCE=on) on one database, and SSE
 * connections of distinct users joining and leaving ONE flow at a fixed rate on both, for a
 * while. Counts the presence writes each instance makes, per second: from a change stream of
 * the bench's own on the presence collection (what MongoDB saw) and from the instances'
 * `flowsync_presence_writes_total`. The debounce promises at most one per flow per second per
 * instance, whatever the churn.
 *
 *   npx tsx scripts/bench/presence-churn.ts [rate per second, default 1000] [seconds, default 10]
 *
 * Backend: the built-in simulator (MONGO_URL set: that deployment instead).
 */
import http from "node:http";
import { MongoClient } from "mongodb";
import pino from "pino";
import { loadConfig } from "../../src/config";
import { startFlowsync, type Flowsync } from "../../src/flowsync";
import { startSimulator } from "../../src/mongo/sim";

const RATE = Number(process.argv[2] ?? 1000);
const SECONDS = Number(process.argv[3] ?? 10);
const FLOW = "churn";
const DB = "presence_bench";
/** Connections kept open on each instance while the others come and go. */
const STEADY = 50;

async function main(): Promise<void> {
  const sim = process.env.MONGO_URL ? undefined : await startSimulator({});
  const mongoUrl = process.env.MONGO_URL ?? sim!.url;
  const logger = pino({ level: "warn" });
  const start = () =>
    startFlowsync(loadConfig({ MONGO_URL: mongoUrl, MONGO_DB: DB, PORT: "0", PRESENCE: "on", CHANGE_STREAM_AWAIT_MS: "100", MAX_SUBSCRIBERS: "0" }), logger);
  const instances: Flowsync[] = [await start(), await start()];
  const client = await MongoClient.connect(mongoUrl);
  const perSecond = new Map<string, number[]>();
  const t0 = Date.now();
  const stream = client.db(DB).collection("flowsync_presence").watch([], { maxAwaitTimeMS: 100 });
  await stream.tryNext(); // opened before the churn starts
  let watching = true;
  const watched = (async () => {
    while (watching) {
      const change = await stream.tryNext();
      if (!change || !("documentKey" in change)) continue;
      const instance = String(change.documentKey._id).split(":")[0]!;
      const second = Math.floor((Date.now() - t0) / 1000);
      const counts = perSecond.get(instance) ?? [];
      counts[second] = (counts[second] ?? 0) + 1;
      perSecond.set(instance, counts);
    }
  })();

  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const open = new Map<number, http.ClientRequest>();
  let user = 0;
  let joins = 0;
  let leaves = 0;
  const join = (fs: Flowsync) => {
    const id = ++user;
    // Auth off: every connection is its own anonymous user, so each join and leave changes the list.
    const req = http.get(`${fs.url}/api/creative-flowboard/subscribe/${FLOW}`, { agent, headers: { Accept: "text/event-stream" } }, (res) => res.resume());
    req.on("error", () => open.delete(id));
    open.set(id, req);
    joins++;
  };
  const leaveOne = () => {
    const first = open.keys().next();
    if (first.done) return;
    open.get(first.value)!.destroy();
    open.delete(first.value);
    leaves++;
  };

  const writesBefore = instances.map((fs) => fs.presence!.counters.writes);
  const framesBefore = instances.map((fs) => fs.hub.typeCounts().get("PRESENCE")?.delivered ?? 0);
  const churnStart = Date.now();
  // Every tick: as many joins/leaves as the rate asks for by now (half and half, alternating instances).
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const elapsed = Date.now() - churnStart;
      if (elapsed >= SECONDS * 1000) {
        clearInterval(tick);
        resolve();
        return;
      }
      const due = Math.floor((elapsed / 1000) * RATE);
      while (joins + leaves < due) {
        if (open.size < STEADY * 2 || (joins + leaves) % 2 === 0) join(instances[user % 2]!);
        else leaveOne();
      }
    }, 5);
  });
  const churnSeconds = (Date.now() - churnStart) / 1000;
  await new Promise((r) => setTimeout(r, 2000)); // the last debounced writes
  watching = false;
  await watched;
  await stream.close();

  const churnFrom = Math.floor((churnStart - t0) / 1000);
  const churnTo = churnFrom + Math.ceil(churnSeconds);
  console.log(
    `presence churn: ${joins} joins + ${leaves} leaves in ${churnSeconds.toFixed(1)} s on one flow (${((joins + leaves) / churnSeconds).toFixed(0)}/s), two instances`,
  );
  instances.forEach((fs, i) => {
    const writes = fs.presence!.counters.writes - writesBefore[i]!;
    const counts = perSecond.get(fs.presence!.instance) ?? [];
    const during = Array.from({ length: churnTo - churnFrom }, (_, k) => counts[churnFrom + k] ?? 0);
    console.log(
      `instance ${i + 1}: ${writes} presence writes (flowsync_presence_writes_total), ${(writes / churnSeconds).toFixed(2)}/s; ` +
        `per second as MongoDB saw them ${JSON.stringify(during)}, max ${Math.max(...during)}; ` +
        `${(fs.hub.typeCounts().get("PRESENCE")?.delivered ?? 0) - framesBefore[i]!} PRESENCE frames delivered`,
    );
  });

  for (const req of open.values()) req.destroy();
  await Promise.all(instances.map((fs) => fs.stop()));
  await client.close();
  await sim?.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
