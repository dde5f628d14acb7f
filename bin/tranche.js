#!/usr/bin/env node
// The `tranche` command (`npx tranche` in this repository): runs the TypeScript CLI through tsx.
require("tsx/cjs");
require("../src/cli/tranche.ts");
