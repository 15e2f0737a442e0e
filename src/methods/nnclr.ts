/**
 * NNCLR (Dwibedi et al. 2021, "With a Little Help from My Friends: Nearest-Neighbor Contrastive
 * Learning of Visual Representations"): SimCLR whose positive for a view is the nearest
 * neighbour of its projection in a support set (a FIFO queue of past projections), compared by
 * NT-Xent with the other view's prediction.
 *
 * Loss (eq. 2, symmetrised as lightly does): ½·[NT-Xent(NN(z0), p1) + NT-Xent(NN(z1), p0)], with
 * NN(z) the support-set row most cosine-similar to z (no gradient) and p = predictor(z). The
 * support set (`memory_bank`, `supportSetSize` rows, 98304 in the paper) takes view 1's projections
 * after each step. τ = 0.1 (the paper's). Heads: projector in → 2048 → 256 with 2 layers (lightly's
 * CIFAR-10 benchmark; 3 in the paper), predictor 256 → 4096 → 256.
 */
import type { Tensor } from '../torch/index.js';
import * as torch from '../torch/index.js';
import { NTXentLoss } from '../losses/ntxent.js';
import { MemoryBank } from '../losses/memory_bank.js';
import { NNCLRPredictionHead, NNCLRProjectionHead } from '../models/ssl_heads.js';
import { SelfSupervisedMethod, type Backbone, type StepContext } from './method.js';

export interface NNCLROptions {
  temperature?: number;
  supportSetSize?: number;
  hiddenDim?: number;
  outputDim?: number;
  predictionHiddenDim?: number;
  numLayers?: 2 | 3;
}

export class NNCLR extends SelfSupervisedMethod {
  readonly methodName = 'nnclr';
  backbone: Backbone;
  projection_head: NNCLRProjectionHead;
  prediction_head: NNCLRPredictionHead;
  memory_bank: MemoryBank;
  criterion: NTXentLoss;

  constructor(backbone: Backbone, opts: NNCLROptions = {}) {
    super();
    this.backbone = backbone;
    const out = opts.outputDim ?? 256;
    this.projection_head = new NNCLRProjectionHead({ inputDim: backbone.featureDim, hiddenDim: opts.hiddenDim ?? 2048, outputDim: out, numLayers: opts.numLayers ?? 2 });
    this.prediction_head = new NNCLRPredictionHead({ inputDim: out, hiddenDim: opts.predictionHiddenDim ?? 4096, outputDim: out });
    this.memory_bank = new MemoryBank({ size: opts.supportSetSize ?? 4096, dim: out });
    this.criterion = new NTXentLoss({ temperature: opts.temperature ?? 0.1 });
  }

  /** The support-set row nearest (cosine) to each row of z [N, D] → [N, D], no gradient. */
  nearestNeighbour(z: Tensor): Tensor {
    return torch.noGrad(() => {
      const bank = this.memory_bank.negatives();
      const sim = torch.functional.normalize(z).matmul(torch.functional.normalize(bank).t());
      return bank.indexSelect(0, sim.argmax(1));
    });
  }

  trainingStep(views: Tensor[], _ctx: StepContext): Tensor {
    if (views.length !== 2) throw new RangeError(`NNCLR: expected 2 views, got ${views.length}`);
    const z = this.projection_head.forward(this.backbone.forward(torch.cat(views, 0)));
    const [p0, p1] = this.prediction_head.forward(z).chunk(2, 0) as [Tensor, Tensor];
    const [z0, z1] = z.detach().chunk(2, 0) as [Tensor, Tensor];
    const nn0 = this.nearestNeighbour(z0);
    const nn1 = this.nearestNeighbour(z1);
    const loss = this.criterion.forward(nn0, p1).add(this.criterion.forward(nn1, p0)).mul(0.5);
    this.memory_bank.enqueue(torch.functional.normalize(z1));
    return loss;
  }
}
