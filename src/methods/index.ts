/** Methods, each a small class: backbone + head + loss (see `method.ts` for what the loop needs). */
import type { Tensor } from '../torch/index.js';
import { createBackbone, type BackboneSpec } from '../models/index.js';
import type { TripletMining } from '../losses/triplet.js';
import { MoCoV2 } from './moco.js';
import { SimCLR, type SimCLRLossName } from './simclr.js';
import { BYOL } from './byol.js';
import { SimSiam } from './simsiam.js';
import { BarlowTwins } from './barlow_twins.js';
import { VICReg } from './vicreg.js';
import { DINO } from './dino.js';
import { NNCLR } from './nnclr.js';
import { SupCon } from './supcon.js';
import { Triplet } from './triplet.js';
import { Autoencoder } from './autoencoder.js';
import type { LabelledViews, SelfSupervisedMethod } from './method.js';

export * from './method.js';
export * from './simclr.js';
export * from './moco.js';
export * from './momentum.js';
export * from './supervised.js';
export * from './byol.js';
export * from './simsiam.js';
export * from './barlow_twins.js';
export * from './vicreg.js';
export * from './dino.js';
export * from './nnclr.js';
export * from './supcon.js';
export * from './triplet.js';
export * from './autoencoder.js';

/** The image methods `dyad train --method` knows (clip trains on image–text pairs, elsewhere). */
export const SSL_METHODS = ['simclr', 'moco', 'byol', 'simsiam', 'barlow', 'vicreg', 'dino', 'nnclr', 'supcon', 'triplet', 'autoencoder'] as const;
export type SSLMethodName = (typeof SSL_METHODS)[number];

/** Any of them: most train on a list of views, SupCon and Triplet on `LabelledViews`. */
export type AnySelfSupervisedMethod = SelfSupervisedMethod<Tensor[] | LabelledViews>;

export interface MethodSpec {
  method: SSLMethodName;
  backbone: BackboneSpec;
  /** SimCLR, MoCo, NNCLR, SupCon: τ; DINO: the student's τ. */
  temperature?: number;
  /** MoCo: queue size; NNCLR: support-set size. */
  memoryBankSize?: number;
  /** MoCo, BYOL, DINO: base momentum of the EMA encoder. */
  emaMomentum?: number;
  /** SimCLR: one forward over both views (see `SimCLROptions.concatViews`). */
  concatViews?: boolean;
  /** SimCLR: projection-head depth (see `SimCLRProjectionHead.numLayers`). */
  headLayers?: 2 | 3;
  /** SimCLR: the contrastive loss (see `SimCLROptions.loss`). */
  loss?: SimCLRLossName;
  /** DINO: local views per image, final teacher τ and its warm-up epochs (from 0.04). */
  localViews?: number;
  teacherTemperature?: number;
  warmupTeacherEpochs?: number;
  /** Triplet: margin and mining. */
  margin?: number;
  mining?: TripletMining;
  /**
   * SimCLR, MoCo, SupCon: negatives (MoCo: queued keys; SupCon: positives too) from every rank of a
   * running process group (`gatherWithGrad`); without one (or with one rank) it changes nothing.
   * BYOL, SimSiam, Barlow Twins, VICReg and DINO need no negatives: their distributed form is DDP
   * with SyncBatchNorm.
   */
  gatherDistributed?: boolean;
}

/** Builds a method by name (the lookup table the trainer and checkpoints use). */
export function createMethod(spec: MethodSpec): AnySelfSupervisedMethod {
  const make = () => createBackbone(spec.backbone);
  switch (spec.method) {
    case 'simclr':
      return new SimCLR(make(), { temperature: spec.temperature, concatViews: spec.concatViews, numLayers: spec.headLayers, loss: spec.loss, gatherDistributed: spec.gatherDistributed });
    case 'moco':
      return new MoCoV2(make, { temperature: spec.temperature, memoryBankSize: spec.memoryBankSize, momentum: spec.emaMomentum, gatherDistributed: spec.gatherDistributed });
    case 'byol':
      return new BYOL(make, { momentum: spec.emaMomentum });
    case 'simsiam':
      return new SimSiam(make());
    case 'barlow':
      return new BarlowTwins(make());
    case 'vicreg':
      return new VICReg(make());
    case 'dino':
      return new DINO(make, { momentum: spec.emaMomentum, studentTemp: spec.temperature, teacherTemp: spec.teacherTemperature,
        warmupTeacherTempEpochs: spec.warmupTeacherEpochs, localViews: spec.localViews });
    case 'nnclr':
      return new NNCLR(make(), { temperature: spec.temperature, supportSetSize: spec.memoryBankSize });
    case 'supcon':
      return new SupCon(make(), { temperature: spec.temperature, gatherDistributed: spec.gatherDistributed });
    case 'triplet':
      return new Triplet(make(), { margin: spec.margin, mining: spec.mining });
    case 'autoencoder':
      return new Autoencoder(make(), { imageSize: spec.backbone.imageSize, channels: spec.backbone.inChannels });
    default:
      throw new RangeError(`unknown method '${String(spec.method)}': use one of ${SSL_METHODS.join(', ')}`);
  }
}
