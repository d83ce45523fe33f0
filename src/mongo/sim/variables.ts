/**
 * `let` on find, aggregate, update, delete and findAndModify (MongoDB 5.0+,
 * docs: reference/command/find "let"): constants available as `$$name` in the
 * command's expressions. Each value is an expression evaluated once, without a
 * document, before the command runs (so `{$rand: {}}` is one number for all
 * documents, and `{$literal: "$x"}` is the string "$x").
 */
import { Aggregator } from "mingo";
import type { Document } from "bson";
import { Codes, engineError, fail } from "./errors";

/** User variable names start with a lowercase letter (or a non-ASCII character), as mongod's variable_validation. */
const NAME = /^[a-z\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*$/;

/** The evaluated variables of a command's `let`, or undefined without one. */
export function letVariables(cmd: Document): Document | undefined {
  const spec = cmd.let as unknown;
  if (spec === undefined) return undefined;
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) fail(Codes.TypeMismatch, "BSON field 'let' is the wrong type, expected type 'object'");
  const names = Object.keys(spec);
  for (const name of names) {
    if (!NAME.test(name)) fail(16870, `'${name}' starts with an invalid character for a user variable name`);
  }
  if (names.length === 0) return {};
  try {
    // $addFields takes each value as an expression (numbers and strings as themselves).
    const [values] = new Aggregator([{ $addFields: spec }]).run([{}]) as Document[];
    return values;
  } catch (err) {
    throw engineError(err, Codes.BadValue);
  }
}
