/**
 * CLIP embedding throughput: images/s (`encodeImages`) and texts/s (`encodeText` on 77-token
 * ids) of a ViT-B/32-sized CLIP (vision 224 px, patch 32, width 768, 12 layers, 12 heads; text
 * width 512, 12 layers, 8 heads, 77 tokens; projection 512) with random weights, without
 * gradients, against PyTorch eager (bench/reference/clip_reference.py: the same architecture in
 * plain torch.nn, as HF's modeling_clip.py computes it) on the SAME weights (written to a
 * temporary safetensors file that both load), in the same session.
 *
 * Flags: --image-batch 32 --text-batch 256 --iters 3 --threads 2 --no-reference
 *        --layers N (both towers; default 12, fewer for a quick look)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as torch from '../src/torch/index.js';
import { CLIPModel } from '../src/models/clip/model.js';
import { toHFConfig } from '../src/models/clip/config.js';
import { saveFile } from '../src/torch/safetensors.js';
import { emit, machine, num, runReference } from './common.js';

export async function main(args: Record<string, unknown>): Promise<void> {
  const imageBatch = num(args['image-batch'], 32);
  const textBatch = num(args['text-batch'], 256);
  const iters = num(args.iters, 3);
  const threads = num(args.threads, 2);
  const layers = num(args.layers, 12);
  torch.setNumThreads(threads);
  torch.manualSeed(0);
  const model = new CLIPModel({
    projection_dim: 512,
    text_config: { hidden_size: 512, intermediate_size: 2048, num_hidden_layers: layers, num_attention_heads: 8, max_position_embeddings: 77, hidden_act: 'quick_gelu' },
    vision_config: { hidden_size: 768, intermediate_size: 3072, num_hidden_layers: layers, num_attention_heads: 12, image_size: 224, patch_size: 32, hidden_act: 'quick_gelu' },
  }).eval();
  const dir = mkdtempSync(path.join(tmpdir(), 'dyad-bench-clip-'));
  try {
    const weights = path.join(dir, 'model.safetensors');
    const config = path.join(dir, 'config.json');
    torch.scope(() => saveFile(model.stateDict(), weights, { format: 'pt' }));
    writeFileSync(config, JSON.stringify(toHFConfig(model.config)));

    const px = torch.randn([imageBatch, 3, 224, 224]).keep();
    const ids = torch.randint(1, 49000, [textBatch, 77]).keep();
    torch.noGrad(() => {
      ids.narrow(1, 0, 1).fill_(49406);
      ids.narrow(1, 76, 1).fill_(49407);
    });
    const rate = (fn: () => void, n: number): number => {
      fn();
      const t0 = performance.now();
      for (let i = 0; i < iters; i++) fn();
      return (n * iters) / ((performance.now() - t0) / 1000);
    };
    const before = torch.memory().count;
    const imagesPerS = rate(() => torch.scope(() => void model.encodeImages(px, { batchSize: imageBatch })), imageBatch);
    const textsPerS = rate(() => torch.scope(() => void model.encodeText(ids, { batchSize: textBatch })), textBatch);
    const leaked = torch.memory().count - before;

    const ref = args['no-reference'] ? null : runReference('clip_reference.py', [weights, config, imageBatch, textBatch, iters, threads]);
    const r = ref ? (JSON.parse(ref) as { images_per_s: number; texts_per_s: number; torch: string }) : null;
    const common = { threads, layers, iters, leaked_tensors: leaked, ...machine() };
    emit({ bench: 'clip', what: 'image', batch: imageBatch, dyad_per_s: Number(imagesPerS.toFixed(2)), torch_per_s: r ? Number(r.images_per_s.toFixed(2)) : null,
      ratio: r ? Number((imagesPerS / r.images_per_s).toFixed(3)) : null, ...common });
    emit({ bench: 'clip', what: 'text', batch: textBatch, tokens: 77, dyad_per_s: Number(textsPerS.toFixed(2)), torch_per_s: r ? Number(r.texts_per_s.toFixed(2)) : null,
      ratio: r ? Number((textsPerS / r.texts_per_s).toFixed(3)) : null, ...common });
    if (ref) console.error(`reference: ${ref}`);
    px.dispose();
    ids.dispose();
  } finally {
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
