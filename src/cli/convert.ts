/** `dyad convert in.pth out.safetensors`: a PyTorch `torch.save` state dict to safetensors, without Python. */
import type { Command } from 'commander';
import { convertToSafetensors } from '../export/pytorch.js';

export function registerConvertCommand(p: Command): void {
  p.command('convert')
    .description('convert a PyTorch checkpoint (torch.save: .pth, .pt, pytorch_model.bin) to safetensors, without Python; only tensors are read (weights_only)')
    .argument('<in>', 'the torch.save file')
    .argument('<out>', 'the .safetensors file to write')
    .option('--key <name>', "the entry that holds the state dict (default: the file itself, or its 'state_dict'/'model')")
    .action((src: string, dst: string, o: { key?: string }) => {
      const n = convertToSafetensors(src, dst, o);
      console.log(`dyad: wrote ${n} tensors to ${dst}`);
    });
}
