/**
 * `dyad build-native`: builds the libtorch addon for the libtorch found now (LIBTORCH, else
 * LIBTORCH_USE_PYTORCH=1, else the system install) into the cache folder ($DYAD_CACHE, else
 * $XDG_CACHE_HOME/dyad, else ~/.cache/dyad), which the first import would otherwise do.
 * bin/dyad.js runs it without loading the addon (see standalone.ts).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { packageRoot } from '../torch/package_root.js';

export function registerNativeCommands(p: Command): void {
  p.command('build-native')
    .description('build the libtorch addon into the cache folder ($DYAD_CACHE, else $XDG_CACHE_HOME/dyad, else ~/.cache/dyad); the first import does this when needed')
    .option('--out <dir>', 'install dyad.node (and its record dyad.node.json) into this folder instead')
    .option('--cache <dir>', 'the cache folder')
    .addHelpText('after', '\nlibtorch comes from LIBTORCH=/path, else LIBTORCH_USE_PYTORCH=1 (a pip torch), else the system (apt-get install libtorch-dev).')
    .action(async (opts: { out?: string; cache?: string }) => {
      const builder = (await import(pathToFileURL(path.join(packageRoot(), 'native', 'build-addon.mjs')).href)) as {
        buildAddon(o: { target?: string; cache?: string }): Promise<string>;
        cacheRoot(): string;
      };
      await builder.buildAddon({ target: opts.out ? path.resolve(opts.out) : undefined, cache: opts.cache ? path.resolve(opts.cache) : builder.cacheRoot() });
    });
}
