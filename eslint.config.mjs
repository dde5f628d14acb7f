// Lint: typescript-eslint's recommended rules, promises that must be handled, and a fence
// that keeps the machine pure (SPEC: src/machines imports only xstate, zod and itself).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "src/generated/", "dist/", "ui/dist/", "coverage/", "*.config.js"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false } }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/switch-exhaustiveness-check": "error",
      "no-console": "error",
    },
  },
  {
    files: ["src/machines/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^(?!xstate$|zod$|\\./|\\.\\./vocabulary$)",
              message: "The machine is pure: it imports only xstate, zod, the vocabulary and its own files. Work leaves it as effects.",
            },
          ],
        },
      ],
    },
  },
  {
    // The `tranche` launcher: plain CommonJS that loads tsx, then the TypeScript CLI.
    files: ["bin/**/*.js"],
    languageOptions: { sourceType: "commonjs", globals: { require: "readonly" } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    files: ["scripts/**/*.ts", "bench/**/*.ts", "src/cli/**/*.ts"],
    rules: { "no-console": "off" },
  },
);
