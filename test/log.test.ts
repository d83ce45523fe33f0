import { describe, expect, it } from "vitest";
import { createLogger, defaultLogFormat, prettyLine } from "../src/log";

function capture() {
  const lines: string[] = [];
  return { lines, out: { write: (s: string) => void lines.push(s) } };
}

describe("logs", () => {
  it("json: one pino JSON record per line, as log shippers expect", () => {
    const { lines, out } = capture();
    createLogger({ level: "info", format: "json", out }).info({ url: "http://127.0.0.1:3000" }, "flowsync listening");
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, msg: "flowsync listening", url: "http://127.0.0.1:3000" });
  });

  it("pretty: time, level, message, then key=value; URLs stay clickable, other values are JSON", () => {
    const { lines, out } = capture();
    const logger = createLogger({ level: "debug", format: "pretty", out, color: false });
    logger.info({ url: "http://127.0.0.1:3000/?a=b", collections: ["nodes", "edges"], note: "two words" }, "flowsync listening");
    logger.trace("not at this level");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}flowsync listening url=http:\/\/127\.0\.0\.1:3000\/\?a=b collections=\["nodes","edges"\] note="two words"\n$/,
    );
  });

  it("pretty: an error's stack follows its line, indented; pid and hostname are left out", () => {
    const { lines, out } = capture();
    createLogger({ level: "info", format: "pretty", out, color: false }).error({ err: new Error("boom") }, "it failed");
    expect(lines[0]).toMatch(/ERROR it failed\n {4}Error: boom\n {8}at /);
    expect(lines[0]).not.toMatch(/pid=|hostname=/);
  });

  it("pretty: colours only when asked", () => {
    const record = JSON.stringify({ level: 40, time: 0, msg: "careful" });
    expect(prettyLine(record, true)).toContain("\u001b[33mWARN");
    expect(prettyLine(record, false)).not.toContain("\u001b");
  });

  it("a line that is not JSON passes through unchanged", () => {
    expect(prettyLine("plain text\n")).toBe("plain text\n");
  });

  it("the default format follows the terminal", () => {
    expect(defaultLogFormat(true)).toBe("pretty");
    expect(defaultLogFormat(false)).toBe("json");
    expect(defaultLogFormat(undefined)).toBe("json");
  });
});
