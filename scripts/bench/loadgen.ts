/**
 * A load-generator worker (forked by run.ts over IPC): holds SSE connections and
 * counts what arrives, as cheaply as it can so that it measures the server and
 * not itself.
 *
 * - Every connection is a bare TCP socket with a hand-written GET: no HTTP parser.
 *   An SSE event ends with a blank line, so counting "\n\n" counts events (the
 *   chunked-encoding framing, `\r\n<hex>\r\n`, never forms one).
 * - Every `probeEvery`-th connection (in subscription order, so probes sit at the
 *   start, middle and end of the server's fan-out loop) also records, per event,
 *   its `seq` and the arrival time: run.ts turns those into latencies.
 * - Times are `performance.timeOrigin + performance.now()`: wall-clock ms with
 *   sub-ms resolution, comparable across the processes of one machine.
 */
import net from "node:net";
import { performance } from "node:perf_hooks";

export type WorkerRequest =
  | { id: number; cmd: "open"; url: string; flowIds: string[]; probeEvery: number; localAddress?: string; concurrency?: number }
  | { id: number; cmd: "reset" }
  | { id: number; cmd: "stats"; samples?: boolean }
  | { id: number; cmd: "close" };

export interface WorkerStats {
  connections: number;
  open: number;
  events: number;
  bytes: number;
  /** Fewest events any open connection received since the last reset. */
  minEvents: number;
  /** [seq, arrivalMs] pairs of the probes, since the last reset. */
  samples?: Array<[number, number]>;
}

const now = () => performance.timeOrigin + performance.now();
const NL = 0x0a;
const SEQ_TEXT = '"seq":';

class Conn {
  readonly socket: net.Socket;
  events = 0;
  bytes = 0;
  ready = false;
  closed = false;
  #lastWasNl = false;
  #carry = ""; // the response head until ready; then, for probes, the incomplete tail of the previous chunk

  constructor(
    url: URL,
    readonly probe: boolean,
    samples: Array<[number, number]>,
    localAddress: string | undefined,
    onReady: () => void,
    onFail: (err: Error) => void,
  ) {
    this.socket = net.connect({ host: url.hostname, port: Number(url.port), localAddress });
    this.socket.setNoDelay(true);
    this.socket.once("connect", () => this.socket.write(`GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n\r\n`));
    this.socket.on("error", (err) => {
      if (!this.ready) onFail(err);
    });
    this.socket.on("close", () => {
      this.closed = true;
      if (!this.ready) onFail(new Error("closed before the stream opened"));
    });
    this.socket.on("data", (chunk: Buffer) => {
      const at = now();
      if (!this.ready) {
        // The stream is open once the 200 head and the preamble (`retry: …`) arrived; no event comes before it.
        this.#carry += chunk.toString("latin1");
        if (this.#carry.includes("\r\n\r\n") && this.#carry.includes("retry:")) {
          if (!this.#carry.startsWith("HTTP/1.1 200")) {
            this.socket.destroy();
            return;
          }
          this.#carry = "";
          this.ready = true;
          onReady();
        }
        return;
      }
      this.bytes += chunk.length;
      let n = 0;
      if (this.#lastWasNl && chunk[0] === NL) n++;
      for (let i = chunk.indexOf("\n\n"); i >= 0; i = chunk.indexOf("\n\n", i + 2)) n++;
      this.#lastWasNl = chunk[chunk.length - 1] === NL;
      this.events += n;
      if (this.probe && n > 0) this.#sample(chunk, at, samples);
    });
  }

  #sample(chunk: Buffer, at: number, samples: Array<[number, number]>): void {
    const text = this.#carry + chunk.toString("latin1");
    let from = 0;
    for (let i = text.indexOf(SEQ_TEXT); i >= 0; i = text.indexOf(SEQ_TEXT, from)) {
      let j = i + SEQ_TEXT.length;
      let seq = 0;
      while (j < text.length && text.charCodeAt(j) >= 48 && text.charCodeAt(j) <= 57) seq = seq * 10 + (text.charCodeAt(j++) - 48);
      if (j === text.length) break; // cut in the middle of the number: finish with the next chunk
      samples.push([seq, at]);
      from = j;
    }
    const cut = text.lastIndexOf("\n\n");
    this.#carry = cut >= 0 ? text.slice(cut + 2) : text.slice(-4096);
  }
}

let conns: Conn[] = [];
const samples: Array<[number, number]> = [];

async function open(req: Extract<WorkerRequest, { cmd: "open" }>): Promise<{ opened: number; failed: number; ms: number }> {
  const started = now();
  const url = new URL(req.url);
  let failed = 0;
  let next = 0;
  const concurrency = req.concurrency ?? 200;
  await new Promise<void>((resolve) => {
    let pending = 0;
    const launch = () => {
      while (pending < concurrency && next < req.flowIds.length) {
        const index = next++;
        const target = new URL(`${url.pathname}${encodeURIComponent(req.flowIds[index]!)}`, url);
        pending++;
        let settled = false;
        const done = (ok: boolean) => {
          if (settled) return;
          settled = true;
          pending--;
          if (!ok) failed++;
          if (next >= req.flowIds.length && pending === 0) resolve();
          else launch();
        };
        const probe = req.probeEvery > 0 && index % req.probeEvery === 0;
        conns.push(
          new Conn(
            target,
            probe,
            samples,
            req.localAddress,
            () => done(true),
            () => done(false),
          ),
        );
      }
    };
    if (req.flowIds.length === 0) resolve();
    else launch();
  });
  return { opened: req.flowIds.length - failed, failed, ms: now() - started };
}

function stats(withSamples: boolean): WorkerStats {
  let events = 0;
  let bytes = 0;
  let open = 0;
  let minEvents = Number.POSITIVE_INFINITY;
  for (const c of conns) {
    events += c.events;
    bytes += c.bytes;
    if (!c.closed && c.ready) {
      open++;
      if (c.events < minEvents) minEvents = c.events;
    }
  }
  return { connections: conns.length, open, events, bytes, minEvents: open === 0 ? 0 : minEvents, ...(withSamples ? { samples } : {}) };
}

process.on("message", async (msg: WorkerRequest) => {
  let result: unknown;
  try {
    if (msg.cmd === "open") result = await open(msg);
    else if (msg.cmd === "reset") {
      for (const c of conns) {
        c.events = 0;
        c.bytes = 0;
      }
      samples.length = 0; // in place: the connections hold this array
      result = { ok: true };
    } else if (msg.cmd === "stats") result = stats(msg.samples === true);
    else if (msg.cmd === "close") {
      for (const c of conns) c.socket.destroy();
      conns = [];
      samples.length = 0;
      result = { ok: true };
    }
    process.send!({ id: msg.id, result });
  } catch (err) {
    process.send!({ id: msg.id, error: (err as Error).message });
  }
});
process.on("disconnect", () => process.exit(0));
