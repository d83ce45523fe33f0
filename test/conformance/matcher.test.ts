import { Double, Int32, Long, ObjectId, Timestamp, UUID } from "bson";
import { describe, expect, it } from "vitest";
import { UnimplementedError } from "../../scripts/conformance/errors.js";
import { match, matchExact, matchRootList } from "../../scripts/conformance/matcher.js";

const root = { root: true };
const nested = { root: false };

describe("matching: documents", () => {
  it("allows extra keys in a root-level document only", () => {
    expect(match({ x: 1 }, { x: 1, y: 1 }, root)).toBeNull();
    expect(match({ x: 1 }, { x: 1, y: 1 }, nested)).toMatch(/unexpected field\(s\) y/);
  });

  it("forbids extra keys in nested documents even under a root", () => {
    expect(match({ x: { y: 1 } }, { x: { y: 1, z: 1 } }, root)).toMatch(/^\.x: unexpected field\(s\) z/);
    expect(match({ x: { y: 1 } }, { x: { y: 1 } }, root)).toBeNull();
  });

  it("requires every expected key", () => {
    expect(match({ x: 1, y: 1 }, { x: 1 }, root)).toMatch(/\.y: .*absent/);
  });

  it("ignores key order", () => {
    expect(match({ x: 1, y: { a: 1, b: 2 } }, { y: { b: 2, a: 1 }, x: 1 }, root)).toBeNull();
  });

  it("treats a driver Map (e.g. a command's sort) as a document", () => {
    expect(match({ sort: { _id: 1 } }, { sort: new Map([["_id", 1]]) }, root)).toBeNull();
    expect(
      match(
        { sort: { _id: 1 } },
        {
          sort: new Map([
            ["_id", 1],
            ["x", 1],
          ]),
        },
        root,
      ),
    ).toMatch(/unexpected field/);
  });

  it("does not take a scalar or array for a document", () => {
    expect(match({ a: 1 }, [1], root)).toMatch(/expected a document/);
    expect(match({ a: { b: 1 } }, { a: "x" }, root)).toMatch(/expected a document/);
  });
});

describe("matching: arrays", () => {
  it("requires the same length", () => {
    expect(match([1, 2, 3], [1, 2, 3], root)).toBeNull();
    expect(match([1, 2, 3], [1, 2, 3, 4], root)).toMatch(/expected 3 element\(s\), got 4/);
    expect(match([1, 2, 3], [1, 2], root)).toMatch(/expected 3 element\(s\), got 2/);
  });

  it("matches documents inside arrays as nested (no extra keys)", () => {
    expect(match({ a: [{ x: 1 }] }, { a: [{ x: 1, y: 2 }] }, root)).toMatch(/^\.a\[0\]: unexpected field/);
  });

  it("treats iterable results (find, aggregate) as lists of root documents", () => {
    expect(
      matchRootList(
        [{ x: 1 }, { x: 2 }],
        [
          { x: 1, y: 1 },
          { x: 2, y: 2 },
        ],
      ),
    ).toBeNull();
    expect(matchRootList([{ x: 1 }], [{ x: 1 }, { x: 2 }])).toMatch(/expected 1 document\(s\), got 2/);
    // The same value returned by e.g. distinct is a plain array: nested rules.
    expect(match([{ x: 1 }], [{ x: 1, y: 1 }], root)).toMatch(/unexpected field/);
  });
});

describe("matching: numbers and scalars", () => {
  it("compares int32, int64 and double by value", () => {
    expect(match({ n: 1 }, { n: new Long(1) }, root)).toBeNull();
    expect(match({ n: 1 }, { n: new Int32(1) }, root)).toBeNull();
    expect(match({ n: 1 }, { n: new Double(1.0) }, root)).toBeNull();
    expect(match({ n: new Long(5) }, { n: 5 }, root)).toBeNull();
    expect(match({ n: 1 }, { n: 1n }, root)).toBeNull();
    expect(match({ n: 1 }, { n: 1.5 }, root)).toMatch(/expected 1, got 1.5/);
    expect(match({ n: 1 }, { n: new Long(2) }, root)).not.toBeNull();
  });

  it("keeps int64 precision beyond 2^53", () => {
    const big = Long.fromString("9007199254740993");
    expect(match({ n: big }, { n: Long.fromString("9007199254740993") }, root)).toBeNull();
    expect(match({ n: big }, { n: Long.fromString("9007199254740992") }, root)).not.toBeNull();
  });

  it("does not equate numbers with strings or booleans", () => {
    expect(match({ n: 1 }, { n: "1" }, root)).not.toBeNull();
    expect(match({ n: true }, { n: 1 }, root)).not.toBeNull();
    expect(match({ n: null }, { n: 0 }, root)).not.toBeNull();
  });

  it("compares BSON values by content", () => {
    const id = new ObjectId();
    expect(match({ id }, { id: new ObjectId(id.toHexString()) }, root)).toBeNull();
    expect(match({ id }, { id: new ObjectId() }, root)).not.toBeNull();
    expect(match({ ts: new Timestamp({ t: 1, i: 2 }) }, { ts: new Timestamp({ t: 1, i: 2 }) }, root)).toBeNull();
    expect(match({ d: new Date(5) }, { d: new Date(5) }, root)).toBeNull();
    expect(match({ d: new Date(5) }, { d: new Date(6) }, root)).not.toBeNull();
  });
});

describe("matching: $$exists", () => {
  it("checks presence of a key", () => {
    expect(match({ a: { $$exists: true } }, { a: 1 }, root)).toBeNull();
    expect(match({ a: { $$exists: true } }, {}, root)).toMatch(/\.a: expected to exist/);
    expect(match({ a: { $$exists: false } }, {}, root)).toBeNull();
    expect(match({ a: { $$exists: false } }, { a: 1 }, root)).toMatch(/\.a: expected to be absent/);
  });

  it("counts a null value as present (spec)", () => {
    expect(match({ a: { $$exists: true } }, { a: null }, root)).toBeNull();
    expect(match({ a: { $$exists: false } }, { a: null }, root)).not.toBeNull();
  });

  it("works inside nested documents, which still forbid extra keys", () => {
    expect(match({ c: { w: { $$exists: false } } }, { c: {} }, root)).toBeNull();
    expect(match({ c: { w: { $$exists: false } } }, { c: { w: 1 } }, root)).not.toBeNull();
  });
});

describe("matching: $$type", () => {
  it("accepts one type name or a list", () => {
    expect(match({ a: { $$type: "string" } }, { a: "x" }, root)).toBeNull();
    expect(match({ a: { $$type: "string" } }, { a: 1 }, root)).toMatch(/expected type string/);
    expect(match({ a: { $$type: ["int", "long"] } }, { a: new Long(7) }, root)).toBeNull();
    expect(match({ a: { $$type: ["int", "long"] } }, { a: 7 }, root)).toBeNull();
  });

  it("requires the value to exist", () => {
    expect(match({ a: { $$type: "object" } }, {}, root)).toMatch(/absent/);
  });

  it("tells documents from arrays and BSON scalars", () => {
    expect(match({ a: { $$type: "object" } }, { a: { x: 1 } }, root)).toBeNull();
    expect(match({ a: { $$type: "object" } }, { a: [1] }, root)).not.toBeNull();
    expect(match({ a: { $$type: "object" } }, { a: new ObjectId() }, root)).not.toBeNull();
    expect(match({ a: { $$type: "array" } }, { a: [1] }, root)).toBeNull();
    expect(match({ a: { $$type: "objectId" } }, { a: new ObjectId() }, root)).toBeNull();
  });

  it("separates int from non-integral doubles", () => {
    expect(match({ a: { $$type: "int" } }, { a: 1.5 }, root)).not.toBeNull();
    expect(match({ a: { $$type: "double" } }, { a: 1.5 }, root)).toBeNull();
    expect(match({ a: { $$type: "int" } }, { a: new Int32(3) }, root)).toBeNull();
  });

  it("matches array elements by value", () => {
    expect(match(["a", { $$type: "int" }, "1"], ["a", 3, "1"], root)).toBeNull();
  });

  it("fails loudly on an unknown type name", () => {
    expect(() => match({ a: { $$type: "nonsense" } }, { a: 1 }, root)).toThrow(UnimplementedError);
  });
});

describe("matching: $$unsetOrMatches", () => {
  it("passes when absent, matches when present", () => {
    expect(match({ a: { $$unsetOrMatches: 2 } }, {}, root)).toBeNull();
    expect(match({ a: { $$unsetOrMatches: 2 } }, { a: 2 }, root)).toBeNull();
    expect(match({ a: { $$unsetOrMatches: 2 } }, { a: 3 }, root)).not.toBeNull();
  });

  it("wraps a whole result (e.g. insertOne may return nothing)", () => {
    const expected = { $$unsetOrMatches: { insertedId: { $$unsetOrMatches: 2 } } };
    expect(match(expected, undefined, root)).toBeNull();
    expect(match(expected, { insertedId: 2 }, root)).toBeNull();
    expect(match(expected, { insertedId: 3 }, root)).not.toBeNull();
  });

  it("keeps a root document root-level (extra keys allowed)", () => {
    expect(match({ $$unsetOrMatches: { insertedId: 2 } }, { insertedId: 2, acknowledged: true }, root)).toBeNull();
  });

  it("keeps a nested document nested (extra keys forbidden)", () => {
    expect(match({ ids: { $$unsetOrMatches: { 0: 3 } } }, { ids: { 0: 3, 1: 4 } }, root)).toMatch(/unexpected field/);
    expect(match({ ids: { $$unsetOrMatches: {} } }, { ids: {} }, root)).toBeNull();
  });

  it("can hold another operator", () => {
    const expected = { d: { $$unsetOrMatches: { $$exists: true } } };
    expect(match(expected, {}, root)).toBeNull();
    expect(match(expected, { d: {} }, root)).toBeNull();
  });
});

describe("matching: other operators", () => {
  it("$$lte compares numbers across types", () => {
    expect(match({ a: { $$lte: 5 } }, { a: new Long(5) }, root)).toBeNull();
    expect(match({ a: { $$lte: 5 } }, { a: 6 }, root)).not.toBeNull();
  });

  it("$$matchAsRoot allows extra keys in a nested document", () => {
    expect(match({ a: { $$matchAsRoot: { x: 1 } } }, { a: { x: 1, y: 2 } }, root)).toBeNull();
  });

  it("an operator this runner does not implement fails loudly", () => {
    expect(() => match({ a: { $$matchesHexBytes: "00" } }, { a: 1 }, root)).toThrow(/unimplemented: matching operator \$\$matchesHexBytes/);
    expect(() => match({ a: { $$matchesEntity: "x" } }, { a: 1 }, root)).toThrow(UnimplementedError);
  });

  it("$$sessionLsid matches the saved lsid of the named session exactly, and needs the entities", () => {
    const id = new UUID();
    const lsidOf = (name: string) => (name === "session0" ? { id } : { id: new UUID() });
    expect(match({ lsid: { $$sessionLsid: "session0" } }, { lsid: { id: new UUID(id.toHexString()) } }, { root: true, lsidOf })).toBeNull();
    expect(match({ lsid: { $$sessionLsid: "session1" } }, { lsid: { id } }, { root: true, lsidOf })).toMatch(/lsid\.id/);
    expect(match({ lsid: { $$sessionLsid: "session0" } }, { lsid: { id, extra: 1 } }, { root: true, lsidOf })).toMatch(/unexpected field\(s\) extra/);
    expect(() => match({ lsid: { $$sessionLsid: "session0" } }, { lsid: { id } }, root)).toThrow(UnimplementedError);
  });

  it("a document with several keys is no operator", () => {
    expect(match({ a: { $$exists: true, b: 1 } }, { a: { $$exists: true, b: 1 } }, root)).toBeNull();
  });
});

describe("matching: outcome (exact)", () => {
  it("forbids extra keys at every level and ignores key order", () => {
    expect(matchExact([{ _id: 1, x: 11 }], [{ x: 11, _id: 1 }])).toBeNull();
    expect(matchExact([{ _id: 1 }], [{ _id: 1, x: 11 }])).toMatch(/unexpected field\(s\) x/);
    expect(matchExact([{ _id: 1 }], [])).toMatch(/expected 1 element/);
  });

  it("still compares numbers by value", () => {
    expect(matchExact([{ _id: 1, x: 2 }], [{ _id: new Long(1), x: new Double(2) }])).toBeNull();
  });

  it("does not interpret operators", () => {
    expect(matchExact([{ a: { $$exists: true } }], [{ a: 1 }])).not.toBeNull();
  });
});
