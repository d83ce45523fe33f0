/**
 * The composition root: the only module that reads the environment and the command line and
 * installs signal handlers. Everything else receives its configuration.
 */
import type { Logger } from "pino";
import { configHelp, loadConfig, type Config } from "./config";
import { isFlowsyncError } from "./errors";
import { startFlowsync } from "./flowsync";
import { createLogger, defaultLogFormat } from "./log";

const USAGE = `flowsync: streams MongoDB changes to browsers over Server-Sent Events, per flow, with resume.

Usage: npm start [-- --help]        (or: node dist/main.js [--help])

  -h, --help   print this help and exit

Configured from the environment only (accepted values: docs/configuration.md).
Without MONGO_URL it runs on an embedded MongoDB.

`;

async function main(argv: readonly string[]): Promise<void> {
  if (argv.includes("-h") || argv.includes("--help")) {
    process.stdout.write(`${USAGE}${configHelp()}\n`);
    return;
  }
  if (argv.length > 0) {
    process.stderr.write(`flowsync: unknown argument ${JSON.stringify(argv[0])} (configuration comes from the environment; see --help)\n`);
    process.exitCode = 2;
    return;
  }
  let config: Readonly<Config>;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    // No validated level or format yet: say why start-up stopped in the default format.
    fail(createLogger({ level: "info", format: defaultLogFormat() }), err);
    return;
  }
  const logger = createLogger({ level: config.logLevel, format: config.logFormat ?? defaultLogFormat() });
  let flowsync: Awaited<ReturnType<typeof startFlowsync>>;
  try {
    flowsync = await startFlowsync(config, logger);
  } catch (err) {
    fail(logger, err);
    return;
  }
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

function fail(logger: Logger, err: unknown): void {
  // Expected start-up failures (bad config, bad filter, standalone MongoDB) print their message alone.
  if (isFlowsyncError(err)) logger.fatal(err.message);
  else logger.fatal({ err }, "flowsync failed to start");
  logger.flush(() => process.exit(1));
}

void main(process.argv.slice(2));
