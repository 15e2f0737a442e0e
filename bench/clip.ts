/**
 * CLIP embedding throughput: images/s (`encodeImages`) and texts/s (`encodeText` on 77-token
 * ids) of a ViT-B/32-sized CLIP (vision 224 px, patch 32, width 768, 12 layers, 12 heads; text
 * width 512, 12 layers, 8 heads, 77 tokens; projection 512) with random weights, without
 * gradients, against PyTorch eager (bench/reference/clip_reference.py: the same architecture in
 * plain torch.nn, as HF's modeling_clip.py computes it) on the SAME weights (written to a
 * temporary safetensors file that both load), in the same session.
 *
 * The machine is shared, so they are measured interleaved: the reference runs as a server
 * process (two of them: PyTorch with its default environment, and with the OpenMP/OpenBLAS
 * settings dyad makes for itself, see src/torch/native.ts), and each round times one dyad pass,
 * then one pass of each reference, of the same batch (all with `threads` threads, never at the
 * same time). Rates come from the median pass time; `ratio` = dyad / PyTorch as installed,
 * `ratio_dyad_env` = dyad / PyTorch in dyad's environment (> 1: dyad is faster).
 *
 * Flags: --image-batch 32 --text-batch 256 --rounds 5 --threads 2 --no-reference
 *        --layers N (both towers; default 12, fewer for a quick look)
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as torch from '../src/torch/index.js';
import { CLIPModel } from '../src/models/clip/model.js';
import { toHFConfig } from '../src/models/clip/config.js';
import { saveFile } from '../src/torch/safetensors.js';
import { emit, machine, num, referenceEnv, torchPython, type ReferenceEnv } from './common.js';

/** The PyTorch reference as a server: `pass('image')` resolves to the seconds of one forward pass. */
async function startReference(args: (string | number)[], which: ReferenceEnv): Promise<{ pass(what: 'image' | 'text'): Promise<number>; close(): void } | null> {
  const py = torchPython();
  const file = path.resolve('bench', 'reference', 'clip_reference.py');
  if (py === null || !existsSync(file)) return null;
  const child = spawn(py, [file, ...args.map(String), '--serve'], { stdio: ['pipe', 'pipe', 'inherit'], env: referenceEnv(which) });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const r = await lines.next();
    if (r.done) throw new Error('clip_reference.py exited early (see its error above)');
    return r.value;
  };
  if ((await next()) !== 'ready') throw new Error('clip_reference.py did not start');
  return {
    async pass(what) {
      child.stdin!.write(`${what}\n`);
      return Number(await next());
    },
    close() {
      child.stdin!.end('quit\n');
    },
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export async function main(args: Record<string, unknown>): Promise<void> {
  const imageBatch = num(args['image-batch'], 32);
  const textBatch = num(args['text-batch'], 256);
  const rounds = num(args.rounds, 5);
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
  const px = torch.randn([imageBatch, 3, 224, 224]).keep();
  const ids = torch.randint(1, 49000, [textBatch, 77]).keep();
  torch.noGrad(() => {
    ids.narrow(1, 0, 1).fill_(49406);
    ids.narrow(1, 76, 1).fill_(49407);
  });
  let ref: Awaited<ReturnType<typeof startReference>> = null;
  let refDyadEnv: Awaited<ReturnType<typeof startReference>> = null;
  try {
    const weights = path.join(dir, 'model.safetensors');
    const config = path.join(dir, 'config.json');
    torch.scope(() => saveFile(model.stateDict(), weights, { format: 'pt' }));
    writeFileSync(config, JSON.stringify(toHFConfig(model.config)));
    if (!args['no-reference']) {
      ref = await startReference([weights, config, imageBatch, textBatch, 1, threads], 'default');
      refDyadEnv = await startReference([weights, config, imageBatch, textBatch, 1, threads], 'dyad');
    }

    const dyadPass = (what: 'image' | 'text'): number => {
      const t0 = performance.now();
      torch.scope(() => void (what === 'image' ? model.encodeImages(px, { batchSize: imageBatch }) : model.encodeText(ids, { batchSize: textBatch })));
      return (performance.now() - t0) / 1000;
    };
    const before = torch.memory().count;
    for (const what of ['image', 'text'] as const) {
      const n = what === 'image' ? imageBatch : textBatch;
      dyadPass(what); // warm-up
      await ref?.pass(what);
      await refDyadEnv?.pass(what);
      const ours: number[] = [];
      const theirs: number[] = [];
      const theirsDyadEnv: number[] = [];
      for (let r = 0; r < rounds; r++) {
        ours.push(dyadPass(what));
        if (ref) theirs.push(await ref.pass(what));
        if (refDyadEnv) theirsDyadEnv.push(await refDyadEnv.pass(what));
      }
      const dyadRate = n / median(ours);
      const torchRate = ref ? n / median(theirs) : null;
      const torchDyadEnvRate = refDyadEnv ? n / median(theirsDyadEnv) : null;
      emit({
        bench: 'clip', what, batch: n, ...(what === 'text' ? { tokens: 77 } : {}), dyad_per_s: Number(dyadRate.toFixed(2)),
        torch_per_s: torchRate === null ? null : Number(torchRate.toFixed(2)), ratio: torchRate === null ? null : Number((dyadRate / torchRate).toFixed(3)),
        torch_dyad_env_per_s: torchDyadEnvRate === null ? null : Number(torchDyadEnvRate.toFixed(2)),
        ratio_dyad_env: torchDyadEnvRate === null ? null : Number((dyadRate / torchDyadEnvRate).toFixed(3)),
        dyad_s: ours.map((s) => Number(s.toFixed(3))), torch_s: theirs.map((s) => Number(s.toFixed(3))), torch_dyad_env_s: theirsDyadEnv.map((s) => Number(s.toFixed(3))),
        threads, layers, rounds, leaked_tensors: torch.memory().count - before, torch_version: torch.buildInfo().torchVersion, ...machine(),
      });
    }
  } finally {
    ref?.close();
    refDyadEnv?.close();
    px.dispose();
    ids.dispose();
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
