/** Each test file gets its own database (cloned from a migrated template) and queue prefix: see tests/support. */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/tests"],
  testMatch: ["**/*.test.ts"],
  transform: {
    "^.+\\.(t|j)sx?$|^.+\\.[cm]js$": ["@swc/jest", { jsc: { parser: { syntax: "typescript" }, target: "es2022" }, module: { type: "commonjs" } }],
  },
  globalSetup: "<rootDir>/tests/support/global-setup.ts",
  globalTeardown: "<rootDir>/tests/support/global-teardown.ts",
  // These packages ship as ESM only (Node 20.19+ requires them natively; jest's module
  // system does not), so swc compiles them like our own files.
  transformIgnorePatterns: ["/node_modules/(?!(@prisma/schema-engine-wasm|marked|unpdf)/)"],
  // unpdf loads pdf.js with import("unpdf/pdfjs"), an export with no CommonJS condition.
  moduleNameMapper: { "^unpdf/pdfjs$": "<rootDir>/node_modules/unpdf/dist/pdfjs.mjs" },
  testTimeout: 60000,
  maxWorkers: 2,
};
