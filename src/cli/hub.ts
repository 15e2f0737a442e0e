/**
 * `dyad download ID [--revision R] [--include GLOB...]`: fetches a model from the Hugging Face
 * Hub into the HF cache (only config, tokenizer, preprocessor and safetensors files unless
 * `--include` says otherwise) and prints the local folder. Needs no libtorch.
 */
import type { Command } from 'commander';

export function registerHubCommands(p: Command): void {
  p.command('download')
    .description('download a model from the Hugging Face Hub into the HF cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub) and print its folder')
    .argument('<id>', 'Hub id: org/name, org/name@revision or hf://org/name[@revision][/file]')
    .option('--revision <rev>', 'branch, tag or commit (default: main, or the @revision of the id)')
    .option('--include <glob...>', 'files to fetch (default: config, tokenizer, preprocessor and safetensors files)')
    .option('--cache-dir <dir>', 'the cache root (default: as huggingface_hub)')
    .addHelpText('after', '\nEnvironment: HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE=1 (cache only), HF_HUB_CACHE, HF_HOME.')
    .action(async (id: string, opts: { revision?: string; include?: string[]; cacheDir?: string }) => {
      const { resolveModelSource, parseHubId, HubError } = await import('../hub/index.js');
      const parsed = parseHubId(id);
      if (parsed === null) throw new HubError(`hub: '${id}' is not a Hub id (org/name[@revision] or hf://org/name[@revision][/file])`);
      const local = await resolveModelSource(id.startsWith('hf://') ? id : `hf://${id}`, { revision: opts.revision, include: opts.include, cacheDir: opts.cacheDir });
      console.log(local);
    });
}
