export { startSimulator, DEFAULT_OPLOG_SIZE, type Simulator, type SimulatorOptions } from "./server";
