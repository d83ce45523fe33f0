/**
 * What mongod checks before it stores a document: the `_id` field's storage
 * rules, and the collection's `validator` with its `validationLevel` and
 * `validationAction` (docs: core/schema-validation; errInfo since 5.0:
 * core/schema-validation/view-validation-rules "Document failed validation").
 */
import { Query } from "mingo";
import { BSONRegExp, type Document } from "bson";
import { Codes, ServerError, fail } from "./errors";
import type { Collection } from "./store";

/** `_id` may not be an array, a regex or undefined, nor hold `$`-prefixed field names (storage_validation.cpp). */
export function checkIdField(id: unknown): void {
  if (Array.isArray(id)) fail(Codes.InvalidIdField, "The '_id' value cannot be of type array");
  if (id instanceof RegExp || id instanceof BSONRegExp) fail(Codes.InvalidIdField, "The '_id' value cannot be of type regex");
  const visit = (value: unknown): void => {
    if (value === null || typeof value !== "object" || Array.isArray(value) || !isPlain(value)) return;
    for (const [key, inner] of Object.entries(value)) {
      if (key.startsWith("$")) fail(Codes.InvalidIdField, `_id fields may not contain '$'-prefixed fields: ${key} is not valid for storage.`);
      visit(inner);
    }
  };
  visit(id);
}

function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Throws DocumentValidationFailure (121) with `errInfo` if `doc` breaks the
 * collection's validator. `before` is the stored version for an update: with
 * validationLevel "moderate" a document that already broke the rules may stay broken.
 * validationAction "warn" only logs on mongod; the simulator accepts the write.
 */
export function checkValidator(coll: Collection, doc: Document, before: Document | undefined, bypass: boolean): void {
  const validator = coll.options.validator as Document | undefined;
  if (!validator || bypass || Object.keys(validator).length === 0) return;
  const level = coll.options.validationLevel ?? "strict";
  const action = coll.options.validationAction ?? "error";
  if (level === "off" || action === "warn") return;
  const query = new Query(validator);
  if (query.test(doc)) return;
  if (level === "moderate" && before !== undefined && !query.test(before)) return;
  throw new ServerError(Codes.DocumentValidationFailure, "Document failed validation", undefined, {
    errInfo: { failingDocumentId: doc._id, details: explain(validator, doc) },
  });
}

/**
 * The `details` of errInfo: which clause failed and why, in mongod's shape
 * (`operatorName`, `specifiedAs`, `reason`, `consideredValue`/`consideredType`;
 * `$and` with `clausesNotSatisfied` when more than one top-level clause exists).
 * mongod's wording covers many more operators; this covers the common ones.
 */
function explain(validator: Document, doc: Document): Document {
  const clauses = Object.entries(validator).flatMap(([key, cond]) => splitClause(key, cond));
  if (clauses.length === 1) return explainClause(clauses[0]!, doc);
  const failed = clauses
    .map((clause, index) => ({ index, clause }))
    .filter(({ clause }) => !new Query(clause).test(doc))
    .map(({ index, clause }) => ({ index, details: explainClause(clause, doc) }));
  return { operatorName: "$and", clausesNotSatisfied: failed };
}

/** `{x: {$gt: 1, $lt: 5}}` is two clauses, as mongod parses it. */
function splitClause(key: string, cond: unknown): Document[] {
  if (key.startsWith("$") || !isOperatorObject(cond)) return [{ [key]: cond }];
  return Object.entries(cond as Document).map(([op, arg]) => ({ [key]: { [op]: arg } }));
}

function isOperatorObject(value: unknown): boolean {
  return (
    value !== null &&
    typeof value === "object" &&
    !Array.isArray(value) &&
    isPlain(value) &&
    Object.keys(value).length > 0 &&
    Object.keys(value).every((k) => k.startsWith("$"))
  );
}

const COMPARISONS = new Set(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"]);

function explainClause(clause: Document, doc: Document): Document {
  const [key, cond] = Object.entries(clause)[0] ?? ["", undefined];
  if (key.startsWith("$")) return { operatorName: key, specifiedAs: clause, reason: "expression did not match" };
  const [op] = isOperatorObject(cond) ? Object.keys(cond as Document) : ["$eq"];
  const value = valueAt(doc, key);
  if (op === "$exists") return { operatorName: op, specifiedAs: clause, reason: value === undefined ? "path does not exist" : "path exists" };
  if (value === undefined && op !== "$ne" && op !== "$nin") return { operatorName: op, specifiedAs: clause, reason: "field was missing" };
  if (op === "$type") return { operatorName: op, specifiedAs: clause, reason: "type did not match", consideredValue: value, consideredType: typeName(value) };
  if (COMPARISONS.has(op!)) return { operatorName: op, specifiedAs: clause, reason: "comparison failed", consideredValue: value };
  return { operatorName: op, specifiedAs: clause, reason: "expression did not match", consideredValue: value };
}

function valueAt(doc: unknown, path: string): unknown {
  let cur: unknown = doc;
  for (const part of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Document)[part];
  }
  return cur;
}

/** BSON type alias ($type names) of a value as the driver decodes it. */
function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "string") return "string";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "number") return Number.isInteger(value) && Math.abs(value) <= 0x7fffffff ? "int" : "double";
  if (value instanceof Date) return "date";
  const bsontype = (value as { _bsontype?: string })._bsontype;
  const names: Record<string, string> = {
    ObjectId: "objectId",
    Long: "long",
    Double: "double",
    Int32: "int",
    Decimal128: "decimal",
    Binary: "binData",
    Timestamp: "timestamp",
    BSONRegExp: "regex",
    MinKey: "minKey",
    MaxKey: "maxKey",
    Code: "javascript",
  };
  if (bsontype && names[bsontype]) return names[bsontype];
  return "object";
}
