/**
 * `dyad serve`: dyad studio, a local web app over the run folders and the search index: live
 * training curves, a train form, the embedding map, search, duplicates, zero-shot, export.
 *
 *   dyad serve                                  # http://127.0.0.1:7860/, runs/ and .dyad/db
 *   dyad serve --host 0.0.0.0                   # other machines: prints a URL with a token
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { intArg } from './args.js';
import { DEFAULT_DB } from './search.js';

export function registerServeCommand(p: Command): void {
  p.command('serve')
    .description('start dyad studio, a local web app: runs and live curves, train and export from the browser, explore and search an index, duplicates, zero-shot')
    .option('--runs <dir>', 'folder of run folders (created when missing)', 'runs')
    .option('--db <dir>', 'search index database (dyad index --db)', DEFAULT_DB)
    .option('--port <n>', 'port (0: any free port)', intArg('--port', 0), 7860)
    .option('--host <addr>', 'address to bind; anything but loopback requires the printed token', '127.0.0.1')
    .option('--token <t>', 'API token (default: generated when --host is not loopback; env DYAD_STUDIO_TOKEN)')
    .option('--clip <model>', 'CLIP folder or Hub id for the zero-shot playground')
    .option('--upload-limit <mb>', 'largest image upload, in MB', intArg('--upload-limit', 1), 20)
    .option('--open', 'open the studio in the default browser')
    .action(async (o: { runs: string; db: string; port: number; host: string; token?: string; clip?: string; uploadLimit: number; open?: boolean }) => {
      const { createStudio } = await import('../server/app.js');
      const studio = await createStudio({
        runs: o.runs, db: o.db, host: o.host, port: o.port, token: o.token ?? process.env.DYAD_STUDIO_TOKEN ?? null,
        clip: o.clip ?? null, uploadLimit: o.uploadLimit * 1024 * 1024,
      });
      const url = studio.token ? `${studio.url}?token=${studio.token}` : studio.url;
      console.log(`dyad studio: ${url}`);
      if (studio.token) console.log(`API token (required on every /api call from other machines): ${studio.token}`);
      console.log('press Ctrl+C to stop (training jobs started from the studio keep running)');
      if (o.open) {
        const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
        spawn(cmd, [url], { stdio: 'ignore', detached: true }).on('error', () => undefined).unref();
      }
      const stop = () => void studio.close().finally(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await new Promise(() => undefined);
    });
}
