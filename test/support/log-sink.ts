/**
 * A pino destination that keeps every line, raw and parsed: to assert on what
 * flowsync logs (and on what it must never log). Use with
 * `startTestFlowsync(url, env, { logger: sink.logger("trace") })`.
 */
import pino, { type Level, type Logger } from "pino";

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export class LogSink {
  /** Every byte written, as text. */
  raw = "";
  readonly lines: LogLine[] = [];

  readonly stream = {
    write: (chunk: string) => {
      this.raw += chunk;
      for (const line of chunk.split("\n")) if (line.startsWith("{")) this.lines.push(JSON.parse(line) as LogLine);
    },
  };

  logger(level: Level = "info"): Logger {
    return pino({ level }, this.stream);
  }

  /** Lines whose message starts with `prefix`. */
  find(prefix: string): LogLine[] {
    return this.lines.filter((l) => typeof l.msg === "string" && l.msg.startsWith(prefix));
  }
}
