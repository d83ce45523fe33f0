/**
 * The inspector page at `/`: a live view of one flow (canvas, execution, event
 * log, connection state), built on the client library, so it is also its
 * living example.
 *
 * The page's own files (src/http/inspector/) are plain HTML, CSS and browser
 * JS, served as they are. The client library (packages/client, `flowsync-client`)
 * is served as one minified ES module: `npm run build` writes it beside this
 * module (dist/http/inspector/flowsync-client.js), so production needs no bundler;
 * from source (dev, tests) it is bundled with esbuild on the first request and
 * kept in memory. `platform: "browser"` also makes the bundle fail loudly if the
 * client ever imports Node built-ins.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type Router from "@koa/router";
import type { Logger } from "pino";

export interface InspectorOptions {
  /** Route prefix of the API, handed to the page. */
  basePath: string;
  logger: Logger;
}

const CLIENT_ENTRY = fileURLToPath(new URL("../../packages/client/src/index.ts", import.meta.url));
const PAGE_DIR = new URL("./inspector/", import.meta.url);
/** Written by `npm run build` (scripts/build.ts). */
export const PREBUILT_CLIENT = new URL("flowsync-client.js", PAGE_DIR);
const ASSETS: Record<string, string> = {
  "inspector.js": "text/javascript; charset=utf-8",
  "inspector.css": "text/css; charset=utf-8",
};

export interface Bundle {
  code: string;
  /** The same, gzipped once. */
  gzipped: Buffer;
  etag: string;
}

/** The client as one browser ES module (minified), with esbuild from its source. */
export async function buildClientBundle(): Promise<string> {
  // Loaded on first use: esbuild is a dev dependency, absent from the production image.
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: [CLIENT_ENTRY],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    legalComments: "none",
    write: false,
    logLevel: "silent",
  });
  return result.outputFiles[0]!.text;
}

/** The prebuilt bundle when there is one (a built service), else one built from source. */
export async function bundleClient(): Promise<Bundle> {
  const code = await readFile(PREBUILT_CLIENT, "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return buildClientBundle();
    throw err;
  });
  return { code, gzipped: gzipSync(code), etag: `"${createHash("sha1").update(code).digest("base64url")}"` };
}

export function mountInspector(router: Router, { basePath, logger }: InspectorOptions): void {
  let bundle: Promise<Bundle> | undefined;
  const clientBundle = () => {
    bundle ??= bundleClient().then(
      (b) => {
        logger.info({ bytes: b.code.length }, "inspector: client bundle built");
        return b;
      },
      (err: unknown) => {
        bundle = undefined; // the next request tries again
        throw err;
      },
    );
    return bundle;
  };

  router.get("/", async (ctx) => {
    const html = await readFile(new URL("index.html", PAGE_DIR), "utf8");
    ctx.type = "text/html; charset=utf-8";
    ctx.set("Cache-Control", "no-cache");
    ctx.body = html.replace("{{BASE_PATH}}", escapeHtml(basePath));
  });

  router.get("/inspector/flowsync-client.js", async (ctx) => {
    const { code, gzipped, etag } = await clientBundle();
    ctx.set("Cache-Control", "no-cache");
    ctx.vary("Accept-Encoding");
    ctx.etag = etag;
    ctx.type = "text/javascript; charset=utf-8";
    ctx.status = 200;
    if (ctx.fresh) {
      ctx.status = 304;
      return;
    }
    if (ctx.acceptsEncodings("gzip", "identity") === "gzip") {
      ctx.set("Content-Encoding", "gzip");
      ctx.body = gzipped;
    } else {
      ctx.body = code;
    }
  });

  router.get("/inspector/:file", async (ctx, next) => {
    const type = ASSETS[ctx.params.file!];
    if (!type) return next();
    ctx.type = type;
    ctx.set("Cache-Control", "no-cache");
    ctx.body = await readFile(new URL(ctx.params.file!, PAGE_DIR), "utf8");
  });
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
