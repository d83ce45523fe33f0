/**
 * A minimal SSE client for tests: reads frames from a fetch body, keeps raw
 * bytes (to grep for private fields), and can be cut at any moment.
 */
export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

export class SseClient {
  readonly messages: SseMessage[] = [];
  raw = "";
  status = 0;
  headers: Headers | undefined;
  lastEventId: string | undefined;
  ended = false;
  readonly #abort = new AbortController();
  #buffer = "";
  #waiters: Array<() => void> = [];
  readonly done: Promise<void>;

  constructor(url: string, init: { lastEventId?: string; headers?: Record<string, string> } = {}) {
    this.lastEventId = init.lastEventId;
    this.done = this.#run(url, init);
  }

  async #run(url: string, init: { lastEventId?: string; headers?: Record<string, string> }): Promise<void> {
    try {
      const res = await fetch(url, {
        signal: this.#abort.signal,
        headers: { Accept: "text/event-stream", ...(init.lastEventId ? { "Last-Event-ID": init.lastEventId } : {}), ...init.headers },
      });
      this.status = res.status;
      this.headers = res.headers;
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        const text = decoder.decode(chunk, { stream: true });
        this.raw += text;
        this.#buffer += text;
        this.#parse();
      }
    } catch {
      // aborted or connection cut: both just end the stream
    } finally {
      this.ended = true;
      this.#wake();
    }
  }

  #parse(): void {
    for (let end = this.#buffer.indexOf("\n\n"); end >= 0; end = this.#buffer.indexOf("\n\n")) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      const msg: SseMessage = { data: "" };
      let hasData = false;
      for (const line of block.split("\n")) {
        if (line.startsWith(":") || line === "") continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "id") msg.id = value;
        else if (field === "event") msg.event = value;
        else if (field === "data") {
          msg.data = hasData ? `${msg.data}\n${value}` : value;
          hasData = true;
        }
      }
      if (msg.id !== undefined) this.lastEventId = msg.id;
      if (hasData) this.messages.push(msg);
    }
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once `predicate` holds (checked after every chunk), or rejects after `timeoutMs`. */
  async until(predicate: (c: SseClient) => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      if (this.ended && !predicate(this)) throw new Error(`stream ended before ${what}; got ${this.messages.length} messages`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${this.messages.length} messages`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves once flowsync's opening comment has come: the subscription is in place. */
  opened(timeoutMs = 10_000): Promise<void> {
    return this.until((x) => x.raw.includes(": flowsync"), timeoutMs, "stream open");
  }

  /** Events other than comments, parsed. */
  events(): Array<{ id?: string; type?: string; data: Record<string, unknown> }> {
    return this.messages.map((m) => ({ id: m.id, type: m.event, data: JSON.parse(m.data) }));
  }

  close(): Promise<void> {
    this.#abort.abort();
    return this.done;
  }
}
