/**
 * The `dyad` command line (commander). Every command has `--help`; bad input ends with one
 * line `dyad: error: ...` naming the argument and the fix, and exit code 1 (2 for usage errors).
 */
import { Command, Option } from 'commander';
import { registerTrainCommands } from './train.js';
import { registerPredictCommands } from './predict.js';
import { registerClipCommands } from './clip.js';
import { registerSearchCommands } from './search.js';
import { registerConvertCommand } from './convert.js';
import { registerExportCommand } from './export.js';
import { registerHubCommands } from './hub.js';
import { registerNativeCommands } from './native.js';
import { registerServeCommand } from './serve.js';

export function program(): Command {
  const p = new Command('dyad')
    .description('Contrastive representation learning for TypeScript: train image embeddings (SimCLR, MoCo), use them to classify, search and deduplicate.')
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ outputError: (s, write) => write(s.startsWith('error:') ? `dyad: ${s}` : s) });
  registerTrainCommands(p);
  registerPredictCommands(p);
  registerClipCommands(p);
  registerSearchCommands(p);
  registerConvertCommand(p);
  registerExportCommand(p);
  registerHubCommands(p);
  registerNativeCommands(p);
  registerServeCommand(p);
  return p;
}

export { intArg, floatArg } from './args.js';
export { Option };

/** Runs the CLI; errors print one line and set the exit code instead of a stack trace. */
export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (e) {
    const err = e as Error & { code?: string; exitCode?: number };
    if (err.code?.startsWith('commander.')) {
      process.exitCode = err.exitCode ?? 2;
      return;
    }
    console.error(`dyad: error: ${err.message}`);
    if (process.env.DYAD_DEBUG) console.error(err.stack);
    process.exitCode = 1;
  }
}
