/**
 * CLIP on the command line:
 *   dyad zero-shot --model DIR --source S --labels "cat,dog"        classify into labels never trained on
 *   dyad train --method clip --data pairs.jsonl [--model DIR | --image-encoder ssl.safetensors]
 * (`train` belongs to train.ts; this adds the CLIP options to it and runs the CLIP trainer.)
 */
import { Command, Option } from 'commander';
import * as torch from '../torch/index.js';
import { CLIPModel } from '../models/clip/model.js';
import { IMAGENET_TEMPLATES, DEFAULT_TEMPLATES } from '../models/clip/zero_shot.js';
import { trainClip, type ClipTrainConfig } from '../engine/clip_trainer.js';
import { CLIPEmbedder } from '../api/clip_embedder.js';
import { Model } from '../api/model.js';
import { intArg } from './args.js';
import { localOrHub } from '../hub/index.js';
import { registerEmbedderLoader } from './embedders.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** The prompt templates of --ensemble / --template (each with {} for the label). */
export function parseTemplates(o: { ensemble?: boolean; template?: string[] }): readonly string[] {
  const templates: readonly string[] = o.ensemble ? IMAGENET_TEMPLATES : (o.template ?? DEFAULT_TEMPLATES);
  for (const t of templates) if (!t.includes('{}')) throw new Error(`--template '${t}' has no {} where the label goes, e.g. "a photo of a {}."`);
  return templates;
}

/** Parses --labels: comma-separated. */
export function parseLabels(v: string): string[] {
  const labels = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (labels.length === 0) throw new Error(`--labels '${v}' holds no labels: pass them comma-separated, e.g. --labels "cat,dog,bird"`);
  return labels;
}

export function registerClipCommands(p: Command): void {
  p.command('zero-shot')
    .description('classify images into labels the model was never trained on, with a CLIP model (HF folder or dyad train --method clip checkpoint)')
    .requiredOption('--model <dir>', 'a Hugging Face CLIP folder (config.json, model.safetensors, tokenizer files) or a dyad CLIP checkpoint')
    .requiredOption('--source <path|glob|url>', 'an image, a folder, a glob or a URL (repeat for several)', collect)
    .requiredOption('--labels <list>', 'comma-separated labels, e.g. "cat,dog,bird"')
    .option('--template <t>', 'prompt template with {} for the label (repeat to ensemble; default "a photo of a {}.")', collect)
    .option('--ensemble', "use the CLIP paper's 80 ImageNet prompt templates")
    .option('--top <k>', 'labels shown per image', intArg('--top', 1), 5)
    .option('--batch <n>', 'images per forward pass', intArg('--batch', 1), 32)
    .option('--threads <n>', 'libtorch threads (default: all cores)', intArg('--threads', 1))
    .option('--json', 'one JSON object per image (path, label, score, ranked labels)')
    .action(async (o) => {
      if (o.threads) torch.setNumThreads(o.threads);
      const labels = parseLabels(o.labels);
      const templates = parseTemplates(o);
      o.model = await localOrHub(o.model); // a Hub id is fetched once into the HF cache
      // not a CLIP: fromPretrained's error says what to pass
      if (!CLIPModel.isCLIPPath(o.model)) CLIPModel.fromPretrained(o.model).dispose();
      const model = (await Model.load(o.model)).setClasses(labels, { templates });
      try {
        const sources: string[] = o.source;
        for await (const r of model.predict(sources.length === 1 ? sources[0]! : sources, { stream: true, batch: o.batch })) {
          const ranked = r.probs.top5.concat([...r.probs.data.keys()].filter((i) => !r.probs.top5.includes(i)).sort((a, b) => r.probs.data[b]! - r.probs.data[a]!))
            .slice(0, o.top).map((i) => ({ label: labels[i]!, score: Number(r.probs.data[i]!.toFixed(4)) }));
          if (o.json) console.log(JSON.stringify({ path: r.path, label: ranked[0]!.label, score: ranked[0]!.score, ranked }));
          else console.log(`${r.path}  ${ranked.map((x) => `${x.label} ${x.score.toFixed(2)}`).join(', ')}`);
        }
      } finally {
        model.dispose();
      }
    });

  const train = p.commands.find((c) => c.name() === 'train');
  if (train) addClipTrainOptions(train);
}

// `dyad index/search --weights DIR` with a CLIP (HF folder or dyad CLIP checkpoint): a CLIPEmbedder,
// so `dyad search --text "..."` works.
registerEmbedderLoader(async (weights, o) => {
  if (!CLIPModel.isCLIPPath(weights)) return null;
  if (o.threads) torch.setNumThreads(o.threads);
  return CLIPEmbedder.fromPretrained(weights, o.batch !== undefined ? { batchSize: o.batch } : {});
});

/** The CLIP-only options of `dyad train` (used with --method clip). */
export function addClipTrainOptions(cmd: Command): void {
  cmd
    .option('--model <dir>', 'clip: fine-tune this CLIP (an HF folder or a dyad CLIP checkpoint)')
    .option('--image-encoder <file>', 'clip: lock this dyad self-supervised encoder (dyad train --method simclr|moco) as the image tower (LiT)')
    .option('--val <pairs>', 'clip: held-out pairs (CSV/JSONL) for image↔text recall@1 each epoch')
    .option('--patch-size <n>', 'clip from scratch: ViT patch size (8)', intArg('--patch-size', 1))
    .option('--vision-width <n>', 'clip from scratch: ViT width (192)', intArg('--vision-width', 1))
    .option('--vision-layers <n>', 'clip from scratch: ViT layers (6)', intArg('--vision-layers', 1))
    .option('--vision-heads <n>', 'clip from scratch: ViT heads (3)', intArg('--vision-heads', 1))
    .option('--text-width <n>', 'clip from scratch: text transformer width (192)', intArg('--text-width', 1))
    .option('--text-layers <n>', 'clip from scratch: text transformer layers (6)', intArg('--text-layers', 1))
    .option('--text-heads <n>', 'clip from scratch: text transformer heads (3)', intArg('--text-heads', 1))
    .option('--context-length <n>', 'clip from scratch: caption tokens, with start and end (32)', intArg('--context-length', 3))
    .option('--projection-dim <n>', 'clip from scratch: joint embedding size (128)', intArg('--projection-dim', 1))
    .addOption(new Option('--max-logit-scale <x>', 'clip: largest exp(logit_scale) (100, as the paper)').argParser(Number).hideHelp());
}

/** SSL options that mean nothing for CLIP: given explicitly, they are an error rather than silently ignored. */
const SSL_ONLY: Record<string, string> = {
  backbone: '--backbone', width: '--width', stem: '--stem', channels: '--channels', memoryBankSize: '--memory-bank-size', minScale: '--min-scale',
  cjStrength: '--cj-strength', blur: '--blur', knnEvery: '--knn-every', dataRoot: '--data-root', emaMomentum: '--ema-momentum',
  teacherTemperature: '--teacher-temperature', warmupTeacherEpochs: '--warmup-teacher-epochs', margin: '--margin', mining: '--mining', samplesPerClass: '--samples-per-class',
};
const CLIP_ONLY: Record<string, string> = {
  model: '--model', imageEncoder: '--image-encoder', val: '--val', patchSize: '--patch-size', visionWidth: '--vision-width', visionLayers: '--vision-layers',
  visionHeads: '--vision-heads', textWidth: '--text-width', textLayers: '--text-layers', textHeads: '--text-heads', contextLength: '--context-length',
  projectionDim: '--projection-dim',
};

/** Whether option `key` was given on the command line (not a default). */
function given(cmd: Command, key: string): boolean {
  const s = cmd.getOptionValueSource(key);
  return s !== undefined && s !== 'default' && s !== 'implied';
}

/** Rejects CLIP-only options on an SSL run (called by `dyad train` for simclr/moco). */
export function checkNoClipOptions(cmd: Command, method: string): void {
  for (const [k, flag] of Object.entries(CLIP_ONLY)) {
    if (given(cmd, k)) throw new Error(`${flag} is a CLIP option; --method ${method} does not use it (use --method clip)`);
  }
}

/** `dyad train --method clip`: runs the CLIP trainer with the command's options. */
export async function trainClipCommand(o: Record<string, any>, cmd: Command): Promise<void> {
  for (const [k, flag] of Object.entries(SSL_ONLY)) {
    if (given(cmd, k)) {
      throw new Error(`${flag} is not used by --method clip: its image tower is a ViT (--vision-width, --vision-layers, --patch-size), ` +
        'a fine-tuned CLIP (--model) or a locked dyad encoder (--image-encoder)');
    }
  }
  if (!given(cmd, 'data') && !o.resume) throw new Error('--method clip needs --data: a CSV or JSONL list of image paths and captions, e.g. --data pairs.jsonl');
  if (given(cmd, 'optimizer') && o.optimizer === 'lars') throw new Error('--optimizer lars is not for CLIP: use adamw (the default for --method clip) or sgd');
  const opt = (k: string): unknown => (given(cmd, k) ? o[k] : undefined);
  const cfg: Partial<ClipTrainConfig> = {
    data: opt('data') as string, val: o.val, model: o.model, imageEncoder: o.imageEncoder,
    imageSize: o.imageSize, patchSize: o.patchSize, visionWidth: o.visionWidth, visionLayers: o.visionLayers, visionHeads: o.visionHeads,
    textWidth: o.textWidth, textLayers: o.textLayers, textHeads: o.textHeads, contextLength: o.contextLength, projectionDim: o.projectionDim,
    epochs: opt('epochs') as number, batch: opt('batch') as number, optimizer: opt('optimizer') as 'adamw' | 'sgd', lr: o.lr, weightDecay: o.weightDecay,
    warmupEpochs: o.warmupEpochs, temperature: o.temperature, maxLogitScale: o.maxLogitScale, seed: opt('seed') as number, threads: o.threads,
    maxStepsPerEpoch: o.maxStepsPerEpoch, out: opt('out') as string, cache: o.cache === 'auto' ? undefined : o.cache === 'true',
  };
  const r = await trainClip(cfg, { resume: Boolean(o.resume) });
  const last = r.metrics.at(-1);
  console.log(`done: ${r.config.out}  loss ${last?.loss.toFixed(4)}` +
    (last?.val_i2t_r1 !== undefined ? `  val R@1 i→t ${(last.val_i2t_r1 * 100).toFixed(1)}% t→i ${(last.val_t2i_r1! * 100).toFixed(1)}%` : '') +
    `  best ${r.bestPath}  (dyad zero-shot --model ${r.bestPath} --source IMAGES --labels "a,b")`);
  r.model.dispose();
}
