/**
 * Projection heads: small MLPs between the backbone features and the contrastive loss, with
 * the papers' defaults. Each is an `nn.Sequential` named `layers` (`layers.0.weight`, ...).
 */
import * as nn from '../nn/index.js';
import type { Tensor } from '../torch/index.js';

/**
 * One block of a projection head (lightly's `(in, out, batch_norm, non_linearity)` tuples):
 * Linear(inDim → outDim), then `norm` and `activation` when given. Blocks take modules, not flags,
 * so any normalisation fits: `new nn.BatchNorm1d(d)`, `new nn.BatchNorm1d(d, { affine: false })`
 * (SimSiam's last layer), `new nn.GELU()` (DINO).
 */
export interface HeadBlock {
  inDim: number;
  outDim: number;
  norm?: nn.Module | null;
  activation?: nn.Module | null;
  /** The Linear's bias; default: only without `norm` (a bias right before batch norm is cancelled by its mean subtraction). */
  bias?: boolean;
}

/** A block factory's shorthands: `bn(d)` is BatchNorm1d(d), `relu()` a ReLU. */
export const bn = (d: number, o: nn.BatchNormOptions = {}): nn.BatchNorm1d => new nn.BatchNorm1d(d, o);
export const relu = (): nn.ReLU => new nn.ReLU();

/** A stack of Linear/norm/activation blocks (lightly's ProjectionHead). */
export class ProjectionHead extends nn.Module {
  layers: nn.Sequential;
  readonly outputDim: number;

  constructor(blocks: HeadBlock[]) {
    super();
    if (blocks.length === 0) throw new RangeError('ProjectionHead: pass at least one block');
    const mods: nn.Module[] = [];
    for (const b of blocks) {
      mods.push(new nn.Linear(b.inDim, b.outDim, { bias: b.bias ?? !b.norm }));
      if (b.norm) mods.push(b.norm);
      if (b.activation) mods.push(b.activation);
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
    const useBn = opts.batchNorm ?? true;
    if (layers !== 2 && layers !== 3) throw new RangeError(`SimCLRProjectionHead: numLayers must be 2 or 3, got ${layers}`);
    const norm = (d: number): nn.Module | null => (useBn ? bn(d) : null);
    const blocks: HeadBlock[] = [{ inDim: inputDim, outDim: hidden, norm: norm(hidden), activation: relu() }];
    if (layers === 3) blocks.push({ inDim: hidden, outDim: hidden, norm: norm(hidden), activation: relu() });
    // v2 also puts BN on the output layer; v1 does not.
    blocks.push({ inDim: hidden, outDim: out, norm: layers === 3 ? norm(out) : null });
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
      { inDim: inputDim, outDim: hidden, activation: relu() },
      { inDim: hidden, outDim: opts.outputDim ?? 128 },
    ]);
  }
}
