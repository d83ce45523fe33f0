import type { Chunk } from "../../src/hub/subscriber-queue";

/** What a take() would put on the socket, as text (null stays null). */
export function text(chunks: readonly Chunk[] | null): string | null {
  return chunks === null ? null : chunks.map((c) => (typeof c === "string" ? c : c.toString("utf8"))).join("");
}
