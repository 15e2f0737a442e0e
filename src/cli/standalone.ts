/**
 * The commands that need no libtorch (`dyad build-native`, `dyad download`): bin/dyad.js runs
 * them through this program, so they work before the addon exists.
 */
import { Command } from 'commander';
import { registerHubCommands } from './hub.js';
import { registerNativeCommands } from './native.js';

export const STANDALONE_COMMANDS = ['build-native', 'download'];

export async function main(argv: string[]): Promise<void> {
  const p = new Command('dyad').configureOutput({ outputError: (s, write) => write(s.startsWith('error:') ? `dyad: ${s}` : s) });
  registerNativeCommands(p);
  registerHubCommands(p);
  try {
    await p.parseAsync(argv);
  } catch (e) {
    const err = e as Error & { code?: string; exitCode?: number };
    if (err.code?.startsWith('commander.')) {
      process.exitCode = err.exitCode ?? 2;
      return;
    }
    console.error(`dyad: error: ${err.message.replace(/^dyad: /, '')}`);
    if (process.env.DYAD_DEBUG) console.error(err.stack);
    process.exitCode = 1;
  }
}
