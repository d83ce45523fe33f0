/** The inspector's routes: the page, its assets, and the client bundle built for browsers. */
import Router from "@koa/router";
import Koa from "koa";
import http from "node:http";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleClient, mountInspector } from "../../src/http/inspector";

let server: http.Server;
let base: string;

beforeAll(async () => {
  const app = new Koa();
  const router = new Router();
  mountInspector(router, { basePath: '/api/x"<y>', logger: pino({ level: "silent" }) });
  app.use(router.routes());
  server = http.createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe("inspector routes", () => {
  it("serves the page with the API base path, escaped", async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain('content="/api/x&#34;&#60;y&#62;"');
    expect(html).toContain('src="inspector/inspector.js"');
  });

  it("serves the page's JS and CSS, and 404s anything else under /inspector", async () => {
    const js = await fetch(`${base}/inspector/inspector.js`);
    expect(js.headers.get("content-type")).toMatch(/text\/javascript/);
    expect(await js.text()).toContain('from "./flowsync-client.js"');
    expect((await fetch(`${base}/inspector/inspector.css`)).status).toBe(200);
    expect((await fetch(`${base}/inspector/..%2Fapp.ts`)).status).toBe(404);
    expect((await fetch(`${base}/inspector/index.html`)).status).toBe(404);
  });

  it("bundles the client library as one browser ES module, cached with an ETag", async () => {
    const res = await fetch(`${base}/inspector/flowsync-client.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/javascript/);
    const etag = res.headers.get("etag")!;
    const code = await res.text();
    expect(code).toMatch(/export\{/);
    expect(code).toContain("subscribeFlow");
    expect(res.headers.get("content-encoding")).toBe("gzip");
    // fetch adds Cache-Control: no-cache to conditional requests; a plain request shows the 304.
    const again = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get(`${base}/inspector/flowsync-client.js`, { headers: { "If-None-Match": etag } }, resolve).on("error", reject),
    );
    again.resume();
    expect(again.statusCode).toBe(304);
    const plain = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(`${base}/inspector/flowsync-client.js`, resolve).on("error", reject));
    plain.resume();
    expect(plain.headers["content-encoding"]).toBeUndefined();
  });

  it("the client imports no Node built-ins (the browser build would fail)", async () => {
    const { code } = await bundleClient();
    expect(code).not.toMatch(/["']node:|require\(/);
    const mod = await import(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`);
    expect(typeof mod.subscribeFlow).toBe("function");
    expect(typeof mod.createFlowStore).toBe("function");
    expect(mod.isSnapshotData({})).toBe(false);
    // No zod in the browser: the guards are hand-written.
    expect(code).not.toMatch(/ZodError|zod/i);
  });
});
