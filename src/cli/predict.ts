/** `dyad predict`, `dyad val`, `dyad probe`, `dyad finetune`: using a trained model through the `Model` API. */
import type { Command } from 'commander';
import { Model } from '../api/model.js';
import type { ValMetrics } from '../api/validator.js';
import { intArg, floatArg, stagesArg } from './args.js';
import { parseLabels, parseTemplates } from './clip.js';

const fractionArg = (v: string): number => {
  const x = floatArg('--label-fraction')(v);
  if (!(x > 0 && x <= 1)) throw new Error(`--label-fraction must be in (0, 1] (0.01 = 1% of the labels), got '${v}'`);
  return x;
};

function pct(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}

/** Human-readable validation report: top-1/top-5, per-class accuracy, confusion matrix. */
export function formatMetrics(m: Pick<ValMetrics, 'top1' | 'top5' | 'perClass' | 'confusion' | 'names' | 'n'> & { split?: string; data?: string }): string {
  const lines = [`top1 ${pct(m.top1)}  top5 ${pct(m.top5)}  (${m.n} images${m.data ? ` of ${m.data}` : ''}${m.split ? `, ${m.split} split` : ''})`];
  const w = Math.max(5, ...m.names.map((n) => n.length));
  lines.push('per class:');
  for (const [name, acc] of Object.entries(m.perClass)) lines.push(`  ${name.padEnd(w)}  ${pct(acc)}`);
  if (m.names.length <= 20) {
    lines.push('confusion (rows: true class, columns: predicted):');
    const cw = Math.max(4, ...m.confusion.flat().map((v) => String(v).length));
    lines.push(`  ${''.padEnd(w)}  ${m.names.map((_, i) => String(i).padStart(cw)).join(' ')}`);
    m.confusion.forEach((row, i) => lines.push(`  ${`${i} ${m.names[i] ?? ''}`.slice(0, w).padEnd(w)}  ${row.map((v) => String(v).padStart(cw)).join(' ')}`));
  }
  return lines.join('\n');
}

function classifyCommand(p: Command, name: 'probe' | 'finetune', description: string): Command {
  return p.command(name)
    .description(description)
    .requiredOption('--weights <file>', 'a self-supervised checkpoint (runs/x/best.safetensors) or a classifier')
    .requiredOption('--data <dir|fashion-mnist>', 'labelled images: fashion-mnist, a folder with one subfolder per class, or a root with train/ and val/')
    .option('--data-root <dir>', 'folder of the IDX files for fashion-mnist/mnist')
    .option('--label-fraction <x>', 'fraction of the training labels to use, class-balanced (0.01, 0.1, 1)', fractionArg, 1)
    .requiredOption('--out <file>', 'the classifier checkpoint to write (.safetensors)')
    .option('--seed <n>', 'seed of the label subset and the training', intArg('--seed', 0), 0)
    .option('--threads <n>', 'libtorch threads (default: all cores)', intArg('--threads', 1))
    .option('--batch <n>', 'images per batch', intArg('--batch', 2))
    .option('--feature-stages <n>', 'ResNet: classify the last N stages\' features together (1-4; default 1, the last stage)', stagesArg)
    .option('--feature-grid <n>', 'ResNet: average-pool each stage to an N×N grid instead of globally (default 1)', intArg('--feature-grid', 1))
    .option('--json', 'print the metrics as JSON');
}

async function runClassify(kind: 'probe' | 'finetune', o: Record<string, any>): Promise<void> {
  const model = await Model.load(o.weights);
  const common = { data: o.data, dataRoot: o.dataRoot, labelFraction: o.labelFraction, out: o.out, seed: o.seed, threads: o.threads, batch: o.batch,
    featureStages: o.featureStages, featureGrid: o.featureGrid, silent: Boolean(o.json) };
  const clf = kind === 'probe'
    ? await model.linearProbe(common)
    : await model.finetune({ ...common, epochs: o.epochs, lr: o.lr, backboneLrScale: o.backboneLrScale, minSteps: o.minSteps, maxSteps: o.maxSteps });
  const m = clf.metrics as unknown as ValMetrics & { labels: number };
  if (o.json) console.log(JSON.stringify({ weights: o.out, ...m }));
  else {
    console.log(formatMetrics(m));
    console.log(`trained on ${m.labels} labelled images; wrote ${o.out} (a classifier: dyad predict --weights ${o.out} --source <images>)`);
  }
  clf.dispose();
  model.dispose();
}

export function registerPredictCommands(p: Command): void {
  p.command('predict')
    .description('run a model on images: class probabilities (classifier) and/or embeddings')
    .requiredOption('--weights <file>', 'a dyad checkpoint (classifier, or a self-supervised embedder), or a CLIP (HF folder or dyad train --method clip checkpoint)')
    .requiredOption('--source <src...>', 'image file(s), folder, glob (quote it), or http(s) URL')
    .option('--labels <list>', 'CLIP: classify zero-shot into these comma-separated labels, e.g. "cat,dog"')
    .option('--template <t>', 'CLIP: prompt template with {} for the label (repeat to ensemble; default "a photo of a {}.")', (v: string, prev: string[] = []) => [...prev, v])
    .option('--ensemble', "CLIP: the CLIP paper's 80 ImageNet prompt templates")
    .option('--embed', 'also output the L2-normalised embedding')
    .option('--json', 'one JSON object per image instead of a summary line')
    .option('--batch <n>', 'images per batch', intArg('--batch', 1), 32)
    .option('--threads <n>', 'libtorch threads (default: all cores)', intArg('--threads', 1))
    .option('--timeout-ms <n>', 'time limit per URL download', intArg('--timeout-ms', 1), 10000)
    .action(async (o) => {
      const model = await Model.load(o.weights);
      if (o.labels !== undefined) model.setClasses(parseLabels(o.labels), { templates: parseTemplates(o) });
      if (model.task === 'clip' && model.names.length === 0 && !o.embed) {
        console.error(`note: ${o.weights} is a CLIP model without labels, so this prints embeddings. For class names, pass them: --labels "cat,dog"`);
      } else if (model.task === 'embedder' && !o.embed) {
        console.error(`note: ${o.weights} is an embedder, so this prints embeddings. For class names, make a classifier: ` +
          `dyad probe --weights ${o.weights} --data <labelled folder|fashion-mnist> --out classifier.safetensors`);
      }
      const source = o.source.length === 1 ? o.source[0] : o.source;
      let n = 0;
      for await (const r of model.predict(source, { stream: true, embed: Boolean(o.embed), batch: o.batch, threads: o.threads, timeoutMs: o.timeoutMs })) {
        console.log(o.json ? JSON.stringify(r) : r.summary());
        n++;
      }
      if (!o.json) console.error(`${n} image(s)`);
      model.dispose();
    });

  p.command('val')
    .description('accuracy of a model on labelled data: top-1, top-5, per-class accuracy, confusion matrix (kNN for an embedder)')
    .requiredOption('--weights <file>', 'a dyad checkpoint')
    .option('--data <dir|fashion-mnist>', "labelled images (default: the data the model was trained on); a root with val/ or test/ uses that split")
    .option('--data-root <dir>', 'folder of the IDX files')
    .option('--batch <n>', 'images per batch', intArg('--batch', 1), 256)
    .option('--threads <n>', 'libtorch threads (default: all cores)', intArg('--threads', 1))
    .option('--json', 'print JSON')
    .action(async (o) => {
      const model = await Model.load(o.weights);
      const m = await model.val({ data: o.data, dataRoot: o.dataRoot, batch: o.batch, threads: o.threads });
      console.log(o.json ? JSON.stringify(m) : `${m.method === 'knn' ? 'kNN (embedder) ' : ''}${formatMetrics(m)}`);
      model.dispose();
    });

  classifyCommand(p, 'probe', 'linear probe: a linear classifier on the frozen features, from a fraction of the labels (small lr/wd sweep on a validation split)')
    .action(async (o) => runClassify('probe', o));

  classifyCommand(p, 'finetune', 'fine-tune the whole network plus a new linear head on a fraction of the labels (backbone at a lower lr)')
    .option('--epochs <n>', 'passes over the labelled images (at least --min-steps steps)', intArg('--epochs', 1))
    .option('--lr <x>', 'learning rate at batch 256 (head; the backbone gets lr × --backbone-lr-scale)', floatArg('--lr'))
    .option('--backbone-lr-scale <x>', 'backbone lr multiplier (default 0.1)', floatArg('--backbone-lr-scale'))
    .option('--min-steps <n>', 'fewest optimizer steps (few labels = few batches per epoch)', intArg('--min-steps', 0))
    .option('--max-steps <n>', 'most optimizer steps (0: no cap)', intArg('--max-steps', 0))
    .action(async (o) => runClassify('finetune', o));
}
