/**
 * The composition root: the only module that reads the environment and
 * installs signal handlers. Everything else receives its configuration.
 */
import pino from "pino";
import { loadConfig } from "./config";
import { isFlowsyncError } from "./errors";
import { startFlowsync } from "./flowsync";

const logger = pino({ level: process.env.LOG_LEVEL || "info" });

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  logger.level = config.logLevel;
  const flowsync = await startFlowsync(config, logger);
  let signals = 0;
  const shutdown = (signal: string) => {
    if (++signals > 1) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    logger.info({ signal }, "shutting down");
    flowsync.stop().then(
      () => logger.flush(() => process.exit(0)),
      (err) => {
        logger.error({ err }, "shutdown failed");
        logger.flush(() => process.exit(1));
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

main().catch((err) => {
  // Expected start-up failures (bad config, bad filter, standalone MongoDB) print their message alone.
  if (isFlowsyncError(err)) logger.fatal(err.message);
  else logger.fatal({ err }, "flowsync failed to start");
  logger.flush(() => process.exit(1));
});
