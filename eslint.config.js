// ESLint flat config: typescript-eslint's recommended rules, the house rules below, and the layering
// (docs/architecture.md): data flows mongo → watch → events → hub → http, and a module only imports
// from the layers before its own. `npm run lint` checks it; test/lint/ proves a layer-breaking import fails.
import js from "@eslint/js";
import importX from "eslint-plugin-import-x";
import globals from "globals";
import tseslint from "typescript-eslint";

/** `import-x/no-restricted-paths` zone: files under `target` may not import anything under `from`. */
const zone = (target, from, message, except) => ({ target, from, message, ...(except ? { except } : {}) });
const BELOW_HTTP = ["./src/events", "./src/hub", "./src/watch", "./src/mongo", "./src/filters", "./src/snapshot", "./src/errors.ts", "./src/token.ts"];

/** The layering as no-restricted-paths zones (paths from the repository root). */
export const LAYER_ZONES = [
  // The client package (flowsync-client) owns the wire types; the service imports them, never the reverse.
  zone("./packages/client", ["./src", "./test", "./scripts"], "packages/client imports only itself: the service imports its wire types, never the reverse"),
  zone(
    "./src/events",
    ["./src/hub", "./src/watch", "./src/http", "./src/filters", "./src/mongo", "./src/snapshot"],
    "src/events is the pure mapping layer: no hub, watch, http, filters or mongo",
  ),
  zone(
    "./src/watch",
    ["./src/hub", "./src/http", "./src/events", "./src/filters", "./src/snapshot"],
    "src/watch reads change streams: it knows no events, hub or http",
  ),
  zone(
    "./src/mongo",
    ["./src/watch", "./src/events", "./src/hub", "./src/http", "./src/filters", "./src/snapshot"],
    "src/mongo is the bottom layer: it knows nothing of subscribers",
  ),
  zone(
    "./src/filters",
    ["./src/hub", "./src/http", "./src/watch", "./src/mongo", "./src/snapshot"],
    "src/filters compiles filter files: no hub, watch, http or mongo",
  ),
  zone("./src/hub", ["./src/http"], "src/hub knows no HTTP"),
  zone(
    BELOW_HTTP,
    ["./src/http", "./src/flowsync.ts", "./src/main.ts", "./src/metrics.ts", "./src/config.ts"],
    "nothing below src/http imports it (or the wiring on top)",
  ),
  zone("./src", ["./test", "./scripts"], "src/ never imports tests or scripts"),
];

// A swallowed error says so by name (errors.ts: squashError), so a reader sees the decision.
const NAMED_SWALLOW = {
  selector: "CallExpression[callee.property.name='catch'] > ArrowFunctionExpression.arguments[params.length=0][body.type='BlockStatement'][body.body.length=0]",
  message: "Swallow on purpose with .catch(squashError) (src/errors.ts), not an anonymous empty callback.",
};
const NO_MODULE_LET = ["Program > VariableDeclaration[kind=/let|var/]", "Program > ExportNamedDeclaration > VariableDeclaration[kind=/let|var/]"].map(
  (selector) => ({
    selector,
    message: "No module-level mutable state: keep it in the instance that owns it.",
  }),
);

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", ".cache/**", "src/http/inspector/**", "test/lint/fixtures/**", "coverage/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    plugins: { "import-x": importX },
    settings: {
      "import-x/resolver-next": [importX.createNodeResolver({ extensions: [".ts", ".js", ".json"] })],
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "import-x/no-restricted-paths": ["error", { zones: LAYER_ZONES }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      // flowsync refuses control characters on purpose (SSE fields, flowIds), so its patterns name them.
      "no-control-regex": "off",
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      "no-restricted-syntax": ["error", NAMED_SWALLOW],
    },
  },
  {
    // State belongs to an instance (its owner starts and stops it), never to a module: two instances in one
    // process, as the tests run them, must not share a counter, a timer or a cache.
    files: ["src/**/*.ts"],
    rules: { "no-restricted-syntax": ["error", NAMED_SWALLOW, ...NO_MODULE_LET] },
  },
  {
    // The leaf module: the token types every layer shares; it imports nothing at all.
    files: ["src/token.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: ["*"] }] },
  },
  {
    // The benchmark's measuring loops initialise what every path then assigns; clearer left as they are.
    files: ["scripts/bench/**"],
    rules: { "no-useless-assignment": "off" },
  },
  {
    // Browser scripts: the inspector (plain JS served as is) and the browser tests' pages.
    files: ["src/http/inspector/**/*.js", "test/browser/**/*.js"],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    // The client package has its own error vocabulary (packages/client/src/errors.ts) and imports nothing
    // from src/, so src/errors.ts's squashError is not its to use.
    files: ["packages/client/**"],
    rules: {
      "no-restricted-syntax": ["error", ...NO_MODULE_LET], // `DocChange<Extra = {}>`: {} is the idiom for "no extra fields" in an intersection.
      "@typescript-eslint/no-empty-object-type": ["error", { allowObjectTypes: "always" }],
    },
  },
);
