#!/usr/bin/env node
// The `dyad` command (built TypeScript lives in dist/; run `npm run build` after changes).
import('../dist/src/cli/index.js').then((cli) => cli.main(process.argv)).catch((e) => {
  console.error(`dyad: ${e && e.message ? e.message : e}`);
  process.exit(1);
});
