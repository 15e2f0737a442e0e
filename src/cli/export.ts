/**
 * `dyad export --weights W --format onnx [--out F] [--imgsz N] [--half]`: a model as ONNX, to run
 * without libtorch (onnxruntime-node, onnxruntime-web, any ONNX runtime). W is a dyad checkpoint
 * (classifier → probabilities; embedder → features), a torchvision `.pth` state dict (`--arch`),
 * or a CLIP folder / checkpoint (two files: vision_model.onnx and text_model.onnx in --out).
 */
import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { intArg } from './args.js';
import { localOrHub } from '../hub/index.js';
import { writeFileAtomic } from '../torch/io.js';
import { exportOnnx } from '../export/onnx/export.js';
import { exportNetOnnx } from '../export/onnx/net.js';
import { exportClipOnnx } from '../export/onnx/clip.js';
import { loadTorchvisionResNet } from '../export/pytorch.js';
import { TORCHVISION_ARCHS, type TorchvisionArch } from '../models/torchvision.js';
import { IMAGENET_STATS } from '../transforms/normalize.js';

interface ExportArgs { weights: string; format: string; out?: string; imgsz?: number; half?: boolean; arch: string; opset: number; dynamic: boolean }

const isDir = (p: string): boolean => { try { return statSync(p).isDirectory(); } catch { return false; } };

export function registerExportCommand(p: Command): void {
  p.command('export')
    .description('export a model to ONNX (opset 17) for deployment without libtorch: Node (onnxruntime-node), the browser (onnxruntime-web), any ONNX runtime')
    .requiredOption('--weights <file>', 'a dyad checkpoint (.safetensors), a torchvision state dict (.pth/.pt/.bin, see --arch) or a CLIP folder/checkpoint')
    .option('--format <name>', 'export format (onnx)', 'onnx')
    .option('--out <file>', 'output file (default: the weights path with .onnx; for CLIP a folder, default <weights>-onnx)')
    .option('--imgsz <n>', 'image side of the exported input (default: the checkpoint\'s)', intArg('--imgsz', 1))
    .option('--half', 'float16 weights and compute (half the file; float32 input/output; outputs within ~1e-2)')
    .option('--arch <name>', `torchvision architecture of a .pth file (${TORCHVISION_ARCHS.join(', ')})`, 'resnet18')
    .option('--opset <n>', 'ONNX opset (17)', intArg('--opset', 1), 17)
    .option('--no-dynamic', 'fix the batch size to 1 instead of a dynamic batch axis')
    .action(async (a: ExportArgs) => {
      a.weights = await localOrHub(a.weights); // a Hub id is fetched once into the HF cache
      if (a.format !== 'onnx') throw new Error(`--format: only 'onnx' is supported, got '${a.format}'`);
      const o = { half: a.half ?? false, opset: a.opset, dynamicBatch: a.dynamic };
      const base = a.weights.replace(/[/\\]+$/, '');
      const clipExport = async (): Promise<void> => {
        const { CLIPModel } = await import('../models/clip/model.js');
        const clip = CLIPModel.fromPretrained(a.weights);
        const r = exportClipOnnx(clip, a.out ?? `${base}-onnx`, o);
        clip.dispose();
        console.log(`dyad: wrote ${r.vision} and ${r.text}`);
      };
      if (isDir(a.weights)) return clipExport();
      const out = a.out ?? `${base.replace(/\.(safetensors|pth|pt|bin)$/i, '')}.onnx`;
      if (/\.(pth|pt|bin)$/i.test(a.weights)) {
        if (!TORCHVISION_ARCHS.includes(a.arch as TorchvisionArch)) throw new Error(`--arch must be one of ${TORCHVISION_ARCHS.join(', ')}, got '${a.arch}'`);
        const m = loadTorchvisionResNet(a.weights, a.arch as TorchvisionArch);
        const size = a.imgsz ?? 224;
        exportOnnx(m, { ...o, inputShape: [1, m.config.inChannels, size, size], file: out, metadata: { ...IMAGENET_STATS, image_size: size, arch: a.arch } });
        m.dispose();
      } else {
        const { loadNet } = await import('../api/net.js');
        let net: ReturnType<typeof loadNet>;
        try {
          net = loadNet(a.weights);
        } catch (e) {
          // not a dyad classifier/embedder checkpoint: a CLIP one (dyad train --method clip)?
          try {
            return await clipExport();
          } catch {
            throw e;
          }
        }
        if (net.task === 'clip') {
          const r = exportClipOnnx(net.module as import('../models/clip/model.js').CLIPModel, a.out ?? `${base.replace(/\.safetensors$/i, '')}-onnx`, o);
          net.dispose();
          console.log(`dyad: wrote ${r.vision} and ${r.text}`);
          return;
        }
        writeFileAtomic(out, exportNetOnnx(net, { ...o, ...(a.imgsz !== undefined && { imgsz: a.imgsz }) }));
        net.dispose();
      }
      console.log(`dyad: wrote ${out}`);
    });
}
