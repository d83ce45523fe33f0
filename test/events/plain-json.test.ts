import { Binary, BSONRegExp, Code, DBRef, Decimal128, Double, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp, UUID } from "bson";
import { describe, expect, it } from "vitest";
import { idToString, timestampToString, toPlainJson } from "../../src/events/plain-json";

const oid = "6560e1b1c0ffee0000000001";

describe("toPlainJson", () => {
  const table: [string, unknown, unknown][] = [
    ["ObjectId → hex", new ObjectId(oid), oid],
    ["Date → ISO string", new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)), "2024-01-02T03:04:05.006Z"],
    ["invalid Date → null", new Date(Number.NaN), null],
    ["Int32 → number", new Int32(7), 7],
    ["Double → number", new Double(1.5), 1.5],
    ["NaN → null", Number.NaN, null],
    ["Double Infinity → null", new Double(Number.POSITIVE_INFINITY), null],
    ["safe Long → number", Long.fromNumber(42), 42],
    ["unsafe Long → string", Long.fromString("9007199254740993"), "9007199254740993"],
    ["unsafe bigint → string", 2n ** 63n - 1n, "9223372036854775807"],
    ["Decimal128 → string", new Decimal128("0.0031"), "0.0031"],
    ["Timestamp → seconds.increment", new Timestamp({ t: 1700000000, i: 3 }), "1700000000.3"],
    ["UUID → dashed string", new UUID("a5093abb-38fe-4b9e-a67f-01bb1a96d812"), "a5093abb-38fe-4b9e-a67f-01bb1a96d812"],
    ["Binary → base64", new Binary(Buffer.from("hi")), "aGk="],
    ["Buffer → base64", Buffer.from("hi"), "aGk="],
    ["RegExp → /p/f", /ab+/i, "/ab+/i"],
    ["BSONRegExp → /p/f", new BSONRegExp("ab+", "i"), "/ab+/i"],
    ["Code → source", new Code("return 1"), "return 1"],
    ["MinKey", new MinKey(), "MinKey"],
    ["MaxKey", new MaxKey(), "MaxKey"],
    ["DBRef → $ref/$id", new DBRef("nodes", new ObjectId(oid)), { $ref: "nodes", $id: oid }],
  ];
  for (const [name, input, expected] of table) {
    it(name, () => expect(toPlainJson(input)).toEqual(expected));
  }

  it("converts nested documents and arrays, dropping undefined keys", () => {
    expect(toPlainJson({ a: [new Int32(1), undefined, { b: new ObjectId(oid), c: undefined }] })).toEqual({
      a: [1, null, { b: oid }],
    });
  });

  it("keeps a field named __proto__ as data, never as a prototype", () => {
    const input = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as object;
    const out = toPlainJson(input) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(["__proto__", "a"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("turns a malformed BSON value into null rather than throwing", () => {
    expect(toPlainJson(new Binary(Buffer.from("short"), 4))).toBeNull();
  });
});

describe("idToString", () => {
  it("ObjectId → hex, string → as is, number → digits, other → JSON", () => {
    expect(idToString(new ObjectId(oid))).toBe(oid);
    expect(idToString("node-1")).toBe("node-1");
    expect(idToString(new Int32(12))).toBe("12");
    expect(idToString(Long.fromNumber(12))).toBe("12");
    expect(idToString({ flow: "a", n: 1 })).toBe('{"flow":"a","n":1}');
    expect(idToString(new Date(0))).toBe("1970-01-01T00:00:00.000Z");
  });
});

describe("timestampToString", () => {
  it("formats bson Timestamps and refuses anything else", () => {
    expect(timestampToString(new Timestamp({ t: 5, i: 0 }))).toBe("5.0");
    expect(timestampToString({ t: 5, i: 1 })).toBe("5.1");
    expect(timestampToString({ t: -1, i: 1 })).toBeUndefined();
    expect(timestampToString("5.1")).toBeUndefined();
    expect(timestampToString(undefined)).toBeUndefined();
  });
});
