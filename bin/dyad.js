#!/usr/bin/env node
// The `dyad` command (built TypeScript lives in dist/; run `npm run build` after changes).
// `build-native` and `download` need no libtorch: they run without loading the addon.
const standalone = ['build-native', 'download'].includes(process.argv[2]);
import(standalone ? '../dist/src/cli/standalone.js' : '../dist/src/cli/index.js').then((cli) => cli.main(process.argv)).catch((e) => {
  const message = e && e.message ? e.message : String(e);
  console.error(message.startsWith('dyad:') ? message : `dyad: ${message}`);
  process.exit(1);
});
