/**
 * Runs the MongoDB simulator on its own: `npm run mongo:sim -- --port 27017`.
 * Prints the connection string alone on one line, then serves until SIGINT/SIGTERM.
 * For offline development and tests only.
 */
import { parseArgs } from "node:util";
import { startSimulator } from "../src/mongo/sim";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "27017" },
    host: { type: "string", default: "127.0.0.1" },
    "oplog-size": { type: "string" },
  },
});

const port = Number(values.port);
const oplogSize = values["oplog-size"] === undefined ? undefined : Number(values["oplog-size"]);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`mongo:sim: --port must be an integer 0-65535, got ${values.port}`);
  process.exit(2);
}
if (oplogSize !== undefined && !(Number.isInteger(oplogSize) && oplogSize > 0)) {
  console.error(`mongo:sim: --oplog-size must be a positive integer, got ${values["oplog-size"]}`);
  process.exit(2);
}

const sim = await startSimulator({ port, host: values.host, oplogSize });
console.log(sim.url);

const stop = async () => {
  await sim.close();
  process.exit(0);
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
