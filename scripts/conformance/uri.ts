// Client entities get the backend URL plus their `uriOptions`; those options
// override keys already in the URL (spec: entity client uriOptions).
//
// Done on the string because `new URL()` rejects multi-host mongodb:// URLs.
import { UnimplementedError } from "./errors.js";

function encodeOption(key: string, value: unknown): string[] {
  const enc = (v: string) => `${encodeURIComponent(key)}=${encodeURIComponent(v)}`;
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    if (Object.keys(value).length === 1 && Object.keys(value)[0] === "$$placeholder") {
      throw new UnimplementedError(`uriOptions.${key} $$placeholder`);
    }
    // authMechanismProperties-style: "K1:V1,K2:V2".
    return [
      enc(
        Object.entries(value)
          .map(([k, v]) => `${k}:${String(v)}`)
          .join(","),
      ),
    ];
  }
  if (Array.isArray(value)) {
    // readPreferenceTags: one key per tag set; each tag set is a "k:v,k:v" string.
    return value.map((v) => enc(String(v)));
  }
  return [enc(String(value))];
}

export function applyUriOptions(url: string, options: Record<string, unknown> | undefined): string {
  if (!options || Object.keys(options).length === 0) return url;
  const schemeEnd = url.indexOf("://");
  if (schemeEnd < 0) throw new Error(`not a MongoDB URL: ${url}`);
  const queryStart = url.indexOf("?");
  let base = queryStart >= 0 ? url.slice(0, queryStart) : url;
  const query = queryStart >= 0 ? url.slice(queryStart + 1) : "";
  // A query needs the "/" path separator: mongodb://h:1/?x=1.
  if (!base.slice(schemeEnd + 3).includes("/")) base += "/";

  const overridden = new Set(Object.keys(options).map((k) => k.toLowerCase()));
  const kept = query
    .split("&")
    .filter((pair) => pair !== "")
    .filter((pair) => !overridden.has(decodeURIComponent(pair.split("=")[0]!).toLowerCase()));
  const added = Object.entries(options).flatMap(([k, v]) => encodeOption(k, v));
  return `${base}?${[...kept, ...added].join("&")}`;
}
