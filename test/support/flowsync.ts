/** Starts a flowsync instance in-process against the test backend. */
import pino, { type Logger } from "pino";
import { loadConfig, type Env } from "../../src/config";
import { startFlowsync, type Flowsync } from "../../src/flowsync";

export async function startTestFlowsync(mongoUrl: string, env: Partial<Record<keyof Env, string>> = {}, options: { logger?: Logger } = {}): Promise<Flowsync> {
  const config = loadConfig({ MONGO_URL: mongoUrl, PORT: "0", HOST: "127.0.0.1", FILTERS_DIR: "./filters", CHANGE_STREAM_AWAIT_MS: "100", ...env });
  const logger = options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  return startFlowsync(config, logger);
}

export function subscribeUrl(fs: Flowsync, flowId: string, query = ""): string {
  return `${fs.url}/api/creative-flowboard/subscribe/${encodeURIComponent(flowId)}${query}`;
}
