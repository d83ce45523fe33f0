/**
 * `flowsync-client` and its subpaths resolved to their TypeScript source, for
 * the repository's own tests and dev tools (vitest; tsc and tsx use the same
 * mapping from tsconfig.json `paths`). Users get the built `dist/`.
 */
import { fileURLToPath } from "node:url";

const src = fileURLToPath(new URL("./src/", import.meta.url));

export const clientSourceAlias = [
  { find: /^flowsync-client$/, replacement: `${src}index.ts` },
  { find: /^flowsync-client\/(react|rxjs|wire)$/, replacement: `${src}$1.ts` },
];
