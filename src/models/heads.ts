/**
 * Projection heads: small MLPs between the backbone features and the contrastive loss, with
 * the papers' defaults. Each is an `nn.Sequential` named `layers` (`layers.0.weight`, ...).
 */
import * as nn from '../nn/index.js';
import type { Tensor } from '../torch/index.js';

/** One block of a projection head: Linear → (BatchNorm1d) → (ReLU). */
export interface HeadBlock {
  inDim: number;
  outDim: number;
  batchNorm: boolean;
  relu: boolean;
}

/** A stack of Linear/BatchNorm1d/ReLU blocks (lightly's ProjectionHead). */
export class ProjectionHead extends nn.Module {
  layers: nn.Sequential;
  readonly outputDim: number;

  constructor(blocks: HeadBlock[]) {
    super();
    const mods: nn.Module[] = [];
    for (const b of blocks) {
      // A bias right before batch norm is cancelled by its mean subtraction, so it is dropped.
      mods.push(new nn.Linear(b.inDim, b.outDim, { bias: !b.batchNorm }));
      if (b.batchNorm) mods.push(new nn.BatchNorm1d(b.outDim));
      if (b.relu) mods.push(new nn.ReLU());
    }
    this.layers = new nn.Sequential(...mods);
    this.outputDim = blocks[blocks.length - 1]!.outDim;
  }

  /** x [N, inputDim] → [N, outputDim]. */
  forward(x: Tensor): Tensor {
    return this.layers.forward(x);
  }
}

/**
 * SimCLR's projection head g(·) (Chen et al. 2020, §2.1 and Appendix B.9): Linear → BN → ReLU
 * → ... → Linear to 128-d. v1 uses 2 layers; SimCLR v2 (Chen et al. 2020b) uses 3. Defaults
 * follow the paper for ResNet-50 (2048 → 2048 → 128); pass `inputDim = backbone.featureDim`.
 */
export class SimCLRProjectionHead extends ProjectionHead {
  constructor(opts: { inputDim?: number; hiddenDim?: number; outputDim?: number; numLayers?: 2 | 3; batchNorm?: boolean } = {}) {
    const inputDim = opts.inputDim ?? 2048;
    const hidden = opts.hiddenDim ?? 2048;
    const out = opts.outputDim ?? 128;
    const layers = opts.numLayers ?? 2;
    const bn = opts.batchNorm ?? true;
    if (layers !== 2 && layers !== 3) throw new RangeError(`SimCLRProjectionHead: numLayers must be 2 or 3, got ${layers}`);
    const blocks: HeadBlock[] = [{ inDim: inputDim, outDim: hidden, batchNorm: bn, relu: true }];
    if (layers === 3) blocks.push({ inDim: hidden, outDim: hidden, batchNorm: bn, relu: true });
    // v2 also puts BN on the output layer; v1 does not.
    blocks.push({ inDim: hidden, outDim: out, batchNorm: layers === 3 && bn, relu: false });
    super(blocks);
  }
}

/**
 * MoCo v2's projection head (Chen et al. 2020, "Improved Baselines with Momentum Contrastive
 * Learning", §3): a 2-layer MLP with ReLU and no batch norm, 2048 → 2048 → 128.
 */
export class MoCoProjectionHead extends ProjectionHead {
  constructor(opts: { inputDim?: number; hiddenDim?: number; outputDim?: number } = {}) {
    const inputDim = opts.inputDim ?? 2048;
    const hidden = opts.hiddenDim ?? 2048;
    super([
      { inDim: inputDim, outDim: hidden, batchNorm: false, relu: true },
      { inDim: hidden, outDim: opts.outputDim ?? 128, batchNorm: false, relu: false },
    ]);
  }
}
