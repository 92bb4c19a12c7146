#!/usr/bin/env node
// The `mpchsm` command; the code lives in cli/ and is compiled to dist/ at `npm ci`.
import('../dist/cli/main.js').then((m) => m.main(process.argv.slice(2)));
