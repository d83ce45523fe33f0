export { startSimulator, DEFAULT_NOOP_INTERVAL_MS, DEFAULT_OPLOG_SIZE, type Simulator, type SimulatorOptions } from "./server";
