import { describe, expect, it } from "vitest";
import { CURSOR_MAX_LENGTH, cursorScope, decodeCursor, encodeCursor, isValidScope } from "../../src/events/cursor";
import { comparePositions, laterToken, subPosition } from "../../src/token";

const token = { _data: "826560E1B1000000012B022C0100296E5A1004A5093ABB38FE4B9EA67F01BB1A96D812" };
const scope = cursorScope("rs0", "flowboard");

describe("cursor codec", () => {
  it("round-trips a resume token", () => {
    const cursor = encodeCursor(token, scope);
    expect(cursor).toBe(`1.${scope}.${token._data}`);
    expect(decodeCursor(cursor, scope)).toEqual({ ok: token, position: token._data });
    expect(encodeCursor(token._data, scope)).toBe(cursor);
  });

  it("round-trips a sub-position inside a change (one of several events of an embedded-entity document)", () => {
    const position = subPosition(token._data, 3, { t: 1795305872, i: 7 });
    const cursor = encodeCursor(position, scope);
    expect(cursor).toBe(`1.${scope}.${token._data}-3-1795305872-7`);
    expect(decodeCursor(cursor, scope)).toEqual({ ok: token, position, within: { index: 3, time: { t: 1795305872, i: 7 } } });
    for (const bad of [`${token._data}-3`, `${token._data}-x-1-2`, `${token._data}-1-1-99999999999`, `${token._data.toLowerCase()}-1-1-1`, `-1-1-1`]) {
      expect(decodeCursor(`1.${scope}.${bad}`, scope)).toEqual({ error: "malformed" });
    }
    expect(() => encodeCursor(`${token._data}-3`, scope)).toThrow(/uppercase hex/);
  });

  it("orders sub-positions inside their change and before the change's own token", () => {
    const t = { t: 1, i: 1 };
    const [a, b] = ["8200000001000000012B", "8200000001000000022B"];
    const order = [a, subPosition(b, 0, t), subPosition(b, 1, t), subPosition(b, 10, t), b, subPosition(`${b}00`, 0, t), `${b}00`];
    const sorted = [...order].reverse().sort(comparePositions);
    expect(sorted).toEqual(order);
    // A token that extends another is later than the shorter token's sub-positions too.
    expect(comparePositions(subPosition(b, 99, t), `${b}00`)).toBeLessThan(0);
    expect(laterToken(subPosition(b, 1, t), b)).toBe(b);
    expect(laterToken(undefined, subPosition(b, 1, t))).toBe(subPosition(b, 1, t));
  });

  it("derives a short, stable scope per deployment and database", () => {
    expect(isValidScope(scope)).toBe(true);
    expect(scope.length).toBeLessThanOrEqual(14);
    expect(cursorScope("rs0", "flowboard")).toBe(scope);
    expect(cursorScope("rs0", "other")).not.toBe(scope);
    expect(cursorScope("rs1", "flowboard")).not.toBe(scope);
    // The separator keeps ("ab","c") and ("a","bc") apart.
    expect(cursorScope("ab", "c")).not.toBe(cursorScope("a", "bc"));
  });

  it("answers foreign for a well-formed cursor of another scope", () => {
    const cursor = encodeCursor(token, cursorScope("rs-other", "flowboard"));
    expect(decodeCursor(cursor, scope)).toEqual({ error: "foreign" });
  });

  const malformed: [string, unknown][] = [
    ["not a string", 42],
    ["undefined (no header)", undefined],
    ["empty", ""],
    ["a bare token", token._data],
    ["an unknown version", `2.${scope}.${token._data}`],
    ["lowercase hex", `1.${scope}.${token._data.toLowerCase()}`],
    ["odd-length hex", `1.${scope}.${token._data}A`],
    ["an empty token", `1.${scope}.`],
    ["an extra part", `1.${scope}.${token._data}.00`],
    ["a bad scope charset", `1.RS_0.${token._data}`],
    ["CR/LF", `1.${scope}.${token._data}\r\nevent: x`],
    ["a JSON token", JSON.stringify(token)],
    ["too long", `1.${scope}.${"AB".repeat(CURSOR_MAX_LENGTH)}`],
  ];
  for (const [name, input] of malformed) {
    it(`answers malformed for ${name}`, () => expect(decodeCursor(input, scope)).toEqual({ error: "malformed" }));
  }

  it("accepts a cursor of exactly the maximum length and refuses one more char", () => {
    const prefix = `1.${scope}.`;
    let hex = "AB".repeat(Math.floor((CURSOR_MAX_LENGTH - prefix.length) / 2));
    if ((prefix + hex).length < CURSOR_MAX_LENGTH) hex = hex.slice(0, -2); // keep even length
    const longest = prefix + hex;
    expect(longest.length).toBeLessThanOrEqual(CURSOR_MAX_LENGTH);
    expect(decodeCursor(longest, scope)).toEqual({ ok: { _data: hex }, position: hex });
    expect(decodeCursor(`${prefix}${"AB".repeat(CURSOR_MAX_LENGTH)}`, scope)).toEqual({ error: "malformed" });
  });

  it("refuses to encode a token or scope that is not ours (a bug, not client input)", () => {
    expect(() => encodeCursor({ _data: "82zz" }, scope)).toThrow(/uppercase hex/);
    expect(() => encodeCursor(token, "Bad.Scope")).toThrow(/scope/);
  });
});

describe("time cursors (snapshots)", () => {
  it("round-trips a cluster time and is never confused with a token", async () => {
    const { encodeTimeCursor, decodeCursor } = await import("../../src/events/cursor");
    const c = encodeTimeCursor({ t: 1795305872, i: 7 }, "scope1");
    expect(c).toBe("1.scope1.T1795305872_7");
    expect(decodeCursor(c, "scope1")).toEqual({ time: { t: 1795305872, i: 7 } });
    expect(decodeCursor(c, "other")).toEqual({ error: "foreign" });
    expect(decodeCursor("1.scope1.T99999999999_1", "scope1")).toEqual({ error: "malformed" });
    expect(decodeCursor("1.scope1.T1_", "scope1")).toEqual({ error: "malformed" });
    expect(decodeCursor("1.scope1.t1_2", "scope1")).toEqual({ error: "malformed" });
  });
});
