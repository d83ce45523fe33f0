/**
 * `configureFailPoint`, the fault-injection command a real mongod offers with
 * `enableTestCommands=1` (docs/mongodb.md#fail-points). Two fail points are understood:
 *   failCommand                      fail, block or cut the connection of listed commands
 *   failGetMoreAfterCursorCheckout   fail a getMore the way an interrupted server does
 */
import type { Document } from "bson";
import { Codes, fail } from "./errors";

type Mode = "alwaysOn" | "off" | { times: number } | { skip: number };

interface FailPoint {
  mode: Mode;
  data: Document;
  /** How many times the fail point has fired since it was configured. */
  entered: number;
}

const KNOWN = new Set(["failCommand", "failGetMoreAfterCursorCheckout"]);

export interface FailContext {
  command: string;
  appName?: string;
  ns?: string;
}

export class FailPoints {
  private readonly points = new Map<string, FailPoint>();

  configure(cmd: Document): Document {
    const name = cmd.configureFailPoint;
    if (!KNOWN.has(name)) fail(Codes.BadValue, `Cannot find failpoint: ${name}`);
    const mode = cmd.mode as Mode;
    const valid =
      mode === "alwaysOn" ||
      mode === "off" ||
      (typeof mode === "object" &&
        mode !== null &&
        (Number.isInteger((mode as { times?: number }).times) || Number.isInteger((mode as { skip?: number }).skip)));
    if (!valid) fail(Codes.BadValue, `invalid fail point mode: ${JSON.stringify(mode)}`);
    const data = (cmd.data ?? {}) as Document;
    if (name === "failCommand" && mode !== "off" && !Array.isArray(data.failCommands)) {
      fail(Codes.BadValue, "failCommand fail point requires a 'failCommands' array");
    }
    const before = this.points.get(name)?.entered ?? 0;
    if (mode === "off") this.points.delete(name);
    else this.points.set(name, { mode: typeof mode === "object" ? { ...mode } : mode, data, entered: 0 });
    return { count: before, ok: 1 };
  }

  /** If `name` fires for this command, consumes one activation and returns its data. */
  check(name: string, ctx: FailContext): Document | undefined {
    const fp = this.points.get(name);
    if (!fp) return undefined;
    const { data } = fp;
    if (name === "failCommand" && !(data.failCommands as string[]).includes(ctx.command)) return undefined;
    if (name === "failGetMoreAfterCursorCheckout" && ctx.command !== "getMore") return undefined;
    if (data.appName !== undefined && data.appName !== ctx.appName) return undefined;
    if (data.namespace !== undefined && data.namespace !== ctx.ns) return undefined;
    const mode = fp.mode;
    if (typeof mode === "object" && "skip" in mode && mode.skip > 0) {
      mode.skip--;
      return undefined;
    }
    if (typeof mode === "object" && "times" in mode) {
      if (mode.times <= 0) return undefined;
      if (--mode.times === 0) this.points.delete(name);
    }
    fp.entered++;
    return data;
  }

  clear(): void {
    this.points.clear();
  }
}
