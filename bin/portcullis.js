#!/usr/bin/env node
// The compiled CLI lives in dist/ (built by `npm run build`, which `npm install` runs via `prepare`).
import('../dist/src/cli/main.js').then((m) => m.main(process.argv.slice(2)));
