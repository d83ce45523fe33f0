/**
 * The process's logger: JSON lines for machines (pino's own format), or one readable line per record
 * for a person at a terminal. Both come from the same pino logger, so what is logged never differs,
 * only how it is printed.
 */
import pino from "pino";

export type LogFormat = "json" | "pretty";

export interface Output {
  write(text: string): unknown;
  flush?(cb: (err?: Error) => void): void;
}

/** `pretty` on a terminal, `json` everywhere else (pipes, files, containers, log shippers). */
export function defaultLogFormat(isTTY = process.stdout.isTTY): LogFormat {
  return isTTY === true ? "pretty" : "json";
}

/**
 * `out` defaults to a synchronous writer on stdout (pino.destination), so the last lines before an
 * exit are not lost. Colour: on a terminal unless NO_COLOR is set (no-color.org).
 */
export function createLogger(o: { level: pino.LevelWithSilent; format: LogFormat; out?: Output; color?: boolean }): pino.Logger {
  const out = o.out ?? pino.destination({ dest: 1, sync: true });
  if (o.format === "json") return pino({ level: o.level }, out);
  const color = o.color ?? (process.stdout.isTTY === true && !process.env.NO_COLOR);
  return pino(
    { level: o.level },
    // pino calls the stream's flush, when it has one, from logger.flush().
    {
      write: (line: string) => out.write(prettyLine(line, color)),
      flush: (cb: (err?: Error) => void) => (out.flush ? out.flush(cb) : cb()),
    } as pino.DestinationStream,
  );
}

const LEVELS: Record<number, [name: string, ansi: string]> = {
  10: ["TRACE", "90"],
  20: ["DEBUG", "36"],
  30: ["INFO ", "32"],
  40: ["WARN ", "33"],
  50: ["ERROR", "31"],
  60: ["FATAL", "35"],
};
// pino's own fields: shown in the line's head, or not at all.
const HEAD = new Set(["level", "time", "msg", "pid", "hostname", "err"]);

/** One pino JSON record → `12:00:01.234 INFO  message key=value …`, then an error's stack, indented. */
export function prettyLine(json: string, color = false): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const paint = (ansi: string, s: string) => (color ? `\u001b[${ansi}m${s}\u001b[0m` : s);
  const [name, ansi] = LEVELS[rec.level as number] ?? [String(rec.level), "0"];
  const time = typeof rec.time === "number" ? new Date(rec.time).toISOString().slice(11, 23) : "";
  const fields = Object.entries(rec)
    .filter(([k]) => !HEAD.has(k))
    .map(([k, v]) => `${paint("90", `${k}=`)}${typeof v === "string" && /^[^\s"]+$/.test(v) ? v : JSON.stringify(v)}`);
  let text = [paint("90", time), paint(ansi, name), String(rec.msg ?? ""), ...fields].filter((s) => s !== "").join(" ");
  const err = rec.err as { stack?: unknown; message?: unknown } | undefined;
  if (err) text += `\n    ${String(err.stack ?? err.message ?? JSON.stringify(err)).replaceAll("\n", "\n    ")}`;
  return `${text}\n`;
}
