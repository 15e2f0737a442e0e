/** `dyad train`, `dyad embed`, `dyad knn`: self-supervised training and its direct uses. */
import path from 'node:path';

import { Command, Option } from 'commander';
import * as torch from '../torch/index.js';
import { saveFile } from '../torch/safetensors.js';
import { saveNpy } from '../torch/npy.js';
import { writeFileAtomic } from '../torch/io.js';
import { ImageFolder } from '../data/index.js';
import { checkDevice, train } from '../engine/trainer.js';
import { DataError } from '../data/errors.js';
import { existsSync, statSync } from 'node:fs';
import { intArg, floatArg, stagesArg } from './args.js';
import { trainClipCommand, checkNoClipOptions } from './clip.js';
import { Model } from '../api/model.js';
import { RESNET_STEMS } from '../models/index.js';
import { SSL_METHODS } from '../methods/index.js';
import { TRIPLET_MININGS } from '../losses/triplet.js';
import { launchFromCli } from '../distributed/launcher.js';
import { distributedFromEnv, singleProcessOnly } from '../distributed/worker.js';

export function registerTrainCommands(p: Command): void {
  p.command('train')
    .description('train an image encoder by self-supervised learning (SimCLR, MoCo v2, BYOL, SimSiam, Barlow Twins, VICReg, DINO, NNCLR), from labels (SupCon, triplet), or by reconstruction (autoencoder)')
    .addOption(new Option('--method <name>', 'method (supcon and triplet use the class labels; clip: image–text pairs, see the clip options)').choices([...SSL_METHODS, 'clip']).default('simclr'))
    .option('--data <dir|fashion-mnist|mnist>', 'a folder of images (class subfolders optional), or a built-in dataset', 'fashion-mnist')
    .option('--data-root <dir>', 'folder of the IDX files for fashion-mnist/mnist')
    .option('--epochs <n>', 'epochs', intArg('--epochs', 1), 10)
    .option('--batch <n>', 'images per batch, per process when distributed (lr scales with the global batch/256)', intArg('--batch', 2), 256)
    .addOption(new Option('--backbone <name>', 'backbone').choices(['resnet18', 'resnet34', 'resnet50', 'vit-tiny', 'vit-small']).default('resnet18'))
    .option('--backbone-from <model.pt>', 'a TorchScript model (torch.jit.trace(...).save) as the encoder, its output as the features (replaces --backbone; default --channels 3)')
    .option('--width <n>', 'channels of the first ResNet stage (64 in the paper) or ViT width', intArg('--width', 1), 16)
    .addOption(new Option('--stem <name>', "ResNet stem: cifar (3×3/1) for small images, imagenet (7×7/2 + max-pool), cifar-stride2 (3×3/2: ≈ 3.5× faster at 28 px, more epochs per hour); auto picks cifar up to 64 px").choices(['auto', ...RESNET_STEMS]).default('auto'))
    .option('--image-size <n>', 'training resolution (default 28 for (fashion-)mnist, 96 for folders)', intArg('--image-size', 8))
    .addOption(new Option('--channels <n>', 'input channels').choices(['1', '3']))
    .option('--feature-stages <n>', 'ResNet: pool the last N stages (1-4) into the features (default 1)', stagesArg)
    .option('--feature-grid <n>', 'ResNet: pool each of those stages to an N×N grid (default 1: global average pool)', intArg('--feature-grid', 1))
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['sgd', 'lars', 'adamw']).default('sgd'))
    .option('--lr <x>', 'learning rate at batch 256', floatArg('--lr'))
    .option('--weight-decay <x>', 'weight decay (not on biases and norms)', floatArg('--weight-decay'))
    .option('--warmup-epochs <n>', 'linear warmup epochs before the cosine decay', intArg('--warmup-epochs', 0))
    .option('--temperature <x>', 'NT-Xent temperature (default 0.5 SimCLR, 0.2 MoCo, 0.1 NNCLR and SupCon); DINO: the student\'s (0.1)', floatArg('--temperature'))
    .option('--memory-bank-size <n>', 'MoCo queue size; NNCLR support-set size (default 4096)', intArg('--memory-bank-size', 1))
    .option('--ema-momentum <x>', 'MoCo, BYOL, DINO: base momentum of the EMA encoder, raised to 1 by a cosine schedule (default 0.99)', floatArg('--ema-momentum'))
    .option('--teacher-temperature <x>', 'DINO: teacher temperature after the warm-up from 0.04 (default 0.04; the paper 0.07)', floatArg('--teacher-temperature'))
    .option('--warmup-teacher-epochs <n>', 'DINO: epochs of the teacher-temperature warm-up (default 0)', intArg('--warmup-teacher-epochs', 0))
    .option('--margin <x>', 'triplet: margin (default 0.2)', floatArg('--margin'))
    .addOption(new Option('--mining <name>', 'triplet: which triplets of a batch train (default batch-hard)').choices([...TRIPLET_MININGS]))
    .option('--samples-per-class <n>', 'triplet: K images of each of the P = batch / K classes in a batch (default 4)', intArg('--samples-per-class', 2))
    .option('--min-scale <x>', 'smallest random-resized-crop scale', floatArg('--min-scale'))
    .option('--local-views <n>', 'SimCLR and DINO multi-crop: small views per image besides the two global ones (SwAV; DINO default 2)', intArg('--local-views', 0))
    .option('--local-size <n>', 'side of the small views (default half the image size)', intArg('--local-size', 8))
    .option('--local-min-scale <x>', 'smallest crop scale of the small views (default 0.05)', floatArg('--local-min-scale'))
    .option('--local-max-scale <x>', 'largest crop scale of the small views (default 0.2)', floatArg('--local-max-scale'))
    .option('--cj-strength <x>', 'colour-jitter strength (lower for small images)', floatArg('--cj-strength'))
    .option('--blur <p>', 'Gaussian blur probability', floatArg('--blur'))
    .option('--seed <n>', 'random seed', intArg('--seed', 0), 0)
    .option('--threads <n>', 'libtorch threads (default: all cores)', intArg('--threads', 1))
    .option('--knn-every <n>', 'run the kNN monitor every N epochs (0: never)', intArg('--knn-every', 0))
    .option('--max-steps-per-epoch <n>', 'cap steps per epoch (quick runs)', intArg('--max-steps-per-epoch', 0))
    .option('--no-concat-views', 'SimCLR: encode each view in its own batch (batch-norm statistics per view) instead of both in one')
    .addOption(new Option('--head-layers <n>', 'SimCLR: projection-head depth, 2 (SimCLR v1) or 3 (SimCLR v2; the default)').choices(['2', '3']))
    .addOption(new Option('--loss <name>', 'SimCLR: contrastive loss, ntxent (the paper\'s) or the decoupled dcl / dclw (Yeh et al. 2022)').choices(['ntxent', 'dcl', 'dclw']))
    .option('--no-channels-last', "use PyTorch's default contiguous memory format instead of channels-last")
    .addOption(new Option('--cache <mode>', 'folder data: decode all images into memory (true), decode each batch from the files while training (false), or true when they fit in a quarter of the RAM (auto)').choices(['auto', 'true', 'false']).default('auto'))
    .option('--out <dir>', 'run folder', 'runs/train')
    .option('--resume', 'continue the run in --out from last.safetensors')
    .option('--device <name>', "cpu, cuda or cuda:N: where the model and batches live (CUDA needs a CUDA libtorch; README: Scale out)")
    .addOption(new Option('--amp <mode>', 'mixed precision: bf16 (autocast bfloat16, CPU or CUDA) or fp16 (float16 + gradient scaler, CUDA only)').choices(['none', 'bf16', 'fp16']))
    .option('--nproc-per-node <n>', 'start N worker processes here, as torchrun (README: Scale out)', intArg('--nproc-per-node', 1))
    .option('--nnodes <n>', 'with --nproc-per-node: nodes in the job (default 1)', intArg('--nnodes', 1))
    .option('--node-rank <n>', 'with --nproc-per-node: this node\'s index (default 0)', intArg('--node-rank', 0))
    .option('--master-addr <host>', 'with --nproc-per-node: host of node 0 (default 127.0.0.1)')
    .option('--master-port <port>', 'with --nproc-per-node: port on node 0 (default: a free one with one node, 29500)', intArg('--master-port', 1))
    .action(async (o, cmd: Command) => {
      if (await launchFromCli(o)) return;
      if (o.method === 'clip') {
        singleProcessOnly('--method clip');
        return trainClipCommand(o, cmd);
      }
      checkNoClipOptions(cmd, o.method);
      if (o.device !== undefined) checkDevice(o.device); // before joining a group: "no CUDA" rather than "no NCCL"
      const distributed = await distributedFromEnv(process.env, o.device !== undefined ? { device: o.device } : {});
      const temperature = o.temperature ?? (o.method === 'moco' ? 0.2 : undefined);
      const r = await train({
        method: o.method, data: o.data, dataRoot: o.dataRoot, epochs: o.epochs, batch: o.batch, backbone: o.backbone, backboneFrom: o.backboneFrom, width: o.width, stem: o.stem,
        imageSize: o.imageSize, channels: o.channels ? (Number(o.channels) as 1 | 3) : undefined, optimizer: o.optimizer, lr: o.lr,
        weightDecay: o.weightDecay, warmupEpochs: o.warmupEpochs, temperature, memoryBankSize: o.memoryBankSize, minScale: o.minScale,
        emaMomentum: o.emaMomentum, teacherTemperature: o.teacherTemperature, warmupTeacherEpochs: o.warmupTeacherEpochs, margin: o.margin, mining: o.mining, samplesPerClass: o.samplesPerClass,
        featureStages: o.featureStages, featureGrid: o.featureGrid, localViews: o.localViews, localSize: o.localSize, localMinScale: o.localMinScale, localMaxScale: o.localMaxScale,
        cjStrength: o.cjStrength, blur: o.blur, seed: o.seed, threads: o.threads, knnEvery: o.knnEvery, maxStepsPerEpoch: o.maxStepsPerEpoch,
        channelsLast: o.channelsLast, concatViews: o.concatViews, headLayers: o.headLayers ? (Number(o.headLayers) as 2 | 3) : undefined, loss: o.loss, cache: o.cache === 'auto' ? 'auto' : o.cache === 'true', out: o.out, device: o.device, amp: o.amp,
      }, { resume: Boolean(o.resume), distributed });
      await distributed?.close?.();
      if (distributed && !distributed.isMain) return;
      const last = r.metrics.at(-1);
      console.log(`done: ${r.config.out}  loss ${last?.loss.toFixed(4)}` + (last?.knn_top1 !== undefined ? `  knn_top1 ${(last.knn_top1 * 100).toFixed(2)}%` : '') +
        `  best ${r.bestPath}`);
    });

  p.command('embed')
    .description('embed a folder of images with a trained encoder; writes .safetensors or .npy plus a CSV of paths')
    .requiredOption('--weights <file>', 'a checkpoint from dyad train (best.safetensors)')
    .requiredOption('--data <dir>', 'folder of images')
    .requiredOption('--out <file>', 'output file: .safetensors or .npy (the CSV goes next to it)')
    .option('--batch <n>', 'images per batch', intArg('--batch', 1), 256)
    .action(async (o) => {
      const ext = path.extname(o.out).toLowerCase();
      if (ext !== '.safetensors' && ext !== '.npy') throw new Error(`--out ${o.out}: use a .safetensors or .npy file name`);
      const model = await Model.load(o.weights, { batch: o.batch });
      try {
        checkDir(o.data);
        const folder = await ImageFolder.open(o.data, { channels: model.config!.channels, labels: 'auto', onError: 'skip' });
        const rows: Float32Array[] = [];
        const kept: number[] = [];
        for (let i = 0; i < folder.length; i += o.batch) {
          const idx = [...Array(Math.min(o.batch, folder.length - i)).keys()].map((k) => i + k);
          try {
            rows.push(...await model.embed(idx.map((j) => folder.paths[j]!)));
            kept.push(...idx);
          } catch {
            for (const j of idx) { // a bad file in the batch: skip it alone, as the folder's onError 'skip' does
              try {
                rows.push(...await model.embed(folder.paths[j]!));
                kept.push(j);
              } catch (e) {
                console.error(`skipped ${folder.paths[j]}: ${(e as Error).message}`);
              }
            }
          }
        }
        if (rows.length === 0) throw new DataError(`--data ${o.data} holds no readable images`);
        const dim = rows[0]!.length;
        const flat = new Float32Array(rows.length * dim);
        rows.forEach((r, i) => flat.set(r, i * dim));
        const paths = kept.map((j) => folder.paths[j]!);
        const vectors = torch.tensor(flat, { shape: [rows.length, dim] });
        if (ext === '.npy') saveNpy(vectors, o.out);
        else saveFile({ embeddings: vectors }, o.out, { paths: JSON.stringify(paths), weights: path.resolve(o.weights) });
        vectors.dispose();
        const csv = 'index,path,label\n' + kept.map((j, i) => `${i},${JSON.stringify(folder.paths[j]!)},${folder.labels[j]! >= 0 ? JSON.stringify(folder.names[folder.labels[j]!]) : ''}`).join('\n') + '\n';
        const csvPath = o.out.replace(/\.(safetensors|npy)$/i, '.csv');
        writeFileAtomic(csvPath, csv);
        console.log(`wrote ${rows.length} × ${dim} embeddings to ${o.out} and paths to ${csvPath}`);
      } finally {
        model.dispose();
      }
    });

  p.command('knn')
    .description('kNN top-1 accuracy (k=200, cosine, exp(sim/0.1) weights) of a trained encoder on labelled data')
    .requiredOption('--weights <file>', 'a checkpoint from dyad train')
    .option('--data <dir|fashion-mnist>', 'labelled data: fashion-mnist, or a folder with class subfolders (train/ + val/ or a 10% hold-out)', 'fashion-mnist')
    .option('--data-root <dir>', 'folder of the IDX files')
    .option('--k <n>', 'neighbours', intArg('--k', 1), 200)
    .option('--bank-size <n>', 'training images in the kNN bank', intArg('--bank-size', 1), 60000)
    .option('--json', 'print JSON')
    .action(async (o) => {
      const model = await Model.load(o.weights);
      try {
        if (model.task !== 'embedder') throw new DataError(`--weights ${o.weights} is a ${model.task}, not a self-supervised encoder: measure it with dyad val --weights ${o.weights}`);
        const m = await model.val({ data: o.data, dataRoot: o.dataRoot, knnK: o.k, knnBankSize: o.bankSize, seed: (model.config?.seed as number | undefined) ?? 0 });
        if (o.json) console.log(JSON.stringify({ knn_top1: m.top1, k: o.k, bank: m.bank, queries: m.n }));
        else console.log(`knn_top1 ${(m.top1 * 100).toFixed(2)}%  (k=${o.k}, bank ${m.bank}, queries ${m.n})`);
      } finally {
        model.dispose();
      }
    });
}

function checkDir(dir: string): void {
  if (!existsSync(dir)) throw new DataError(`--data ${dir} does not exist; pass a folder of images`);
  if (!statSync(dir).isDirectory()) throw new DataError(`--data ${dir} is not a folder`);
}
