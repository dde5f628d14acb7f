/** Each test file gets its own database (cloned from a migrated template) and queue prefix: see tests/support. */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/tests"],
  testMatch: ["**/*.test.ts"],
  transform: {
    "^.+\\.(t|j)sx?$": ["@swc/jest", { jsc: { parser: { syntax: "typescript" }, target: "es2022" }, module: { type: "commonjs" } }],
  },
  globalSetup: "<rootDir>/tests/support/global-setup.ts",
  globalTeardown: "<rootDir>/tests/support/global-teardown.ts",
  // The schema engine's wasm bindings ship as ESM only; let swc compile them like our own files.
  transformIgnorePatterns: ["/node_modules/(?!@prisma/schema-engine-wasm/)"],
  testTimeout: 60000,
  maxWorkers: 2,
};
