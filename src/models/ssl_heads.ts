/**
 * The method zoo's heads, lightly's names and block lists (each a `ProjectionHead` of
 * `HeadBlock`s, so checkpoints name them `layers.0.weight`, ...). Defaults are the papers' for a
 * ResNet-50 (2048-d features); the methods (`src/methods/`) pass the shallower heads of the papers'
 * CIFAR-10 settings, as lightly's CIFAR-10 benchmark (docs/.../cifar10_benchmark.py) does. Every head maps [N, inputDim] → [N, outputDim].
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { ProjectionHead, bn, relu, type HeadBlock } from './heads.js';

interface Dims { inputDim?: number; hiddenDim?: number; outputDim?: number }

/** BYOL's projector (Grill et al. 2020, §3.3): Linear → BN → ReLU → Linear, 2048 → 4096 → 256. */
export class BYOLProjectionHead extends ProjectionHead {
  constructor(o: Dims = {}) {
    const h = o.hiddenDim ?? 4096;
    super([{ inDim: o.inputDim ?? 2048, outDim: h, norm: bn(h), activation: relu() }, { inDim: h, outDim: o.outputDim ?? 256 }]);
  }
}

/** BYOL's predictor q_θ (§3.3): the projector's shape, 256 → 4096 → 256. */
export class BYOLPredictionHead extends ProjectionHead {
  constructor(o: Dims = {}) {
    const h = o.hiddenDim ?? 4096;
    super([{ inDim: o.inputDim ?? 256, outDim: h, norm: bn(h), activation: relu() }, { inDim: h, outDim: o.outputDim ?? 256 }]);
  }
}

/**
 * SimSiam's projector (Chen & He 2021, §4.1): 3 layers (2 in the paper's CIFAR-10 setting,
 * Appendix D), 2048 → 2048 → 2048, BN on every layer; the last BN has no affine parameters
 * (`BatchNorm1d(d, { affine: false })`, as the official code) and no ReLU.
 */
export class SimSiamProjectionHead extends ProjectionHead {
  constructor(o: Dims & { numLayers?: 2 | 3 } = {}) {
    const h = o.hiddenDim ?? 2048;
    const out = o.outputDim ?? 2048;
    const n = o.numLayers ?? 3;
    if (n !== 2 && n !== 3) throw new RangeError(`SimSiamProjectionHead: numLayers must be 2 or 3, got ${String(n)}`);
    super([
      { inDim: o.inputDim ?? 2048, outDim: h, norm: bn(h), activation: relu() },
      ...(n === 3 ? [{ inDim: h, outDim: h, norm: bn(h), activation: relu() }] : []),
      { inDim: h, outDim: out, norm: bn(out, { affine: false }) },
    ]);
  }
}

/** SimSiam's predictor h (§4.1): a bottleneck, 2048 → 512 → 2048, BN and ReLU on the hidden layer only. */
export class SimSiamPredictionHead extends ProjectionHead {
  constructor(o: Dims = {}) {
    const h = o.hiddenDim ?? 512;
    super([{ inDim: o.inputDim ?? 2048, outDim: h, norm: bn(h), activation: relu() }, { inDim: h, outDim: o.outputDim ?? 2048 }]);
  }
}

/** Barlow Twins' projector (Zbontar et al. 2021, §4): `numLayers` (3) Linear layers of 8192, BN and ReLU on all but the last. */
export class BarlowTwinsProjectionHead extends ProjectionHead {
  constructor(o: Dims & { numLayers?: number } = {}) {
    const h = o.hiddenDim ?? 8192;
    super(mlp(o.inputDim ?? 2048, h, o.outputDim ?? 8192, o.numLayers ?? 3, 'BarlowTwinsProjectionHead'));
  }
}

/** `n` Linear layers in → h → … → h → out, BN and ReLU on all but the last. */
function mlp(inDim: number, h: number, out: number, n: number, where: string): HeadBlock[] {
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`${where}: numLayers must be an integer ≥ 2, got ${n}`);
  const blocks: HeadBlock[] = [{ inDim, outDim: h, norm: bn(h), activation: relu() }];
  for (let i = 2; i < n; i++) blocks.push({ inDim: h, outDim: h, norm: bn(h), activation: relu() });
  return [...blocks, { inDim: h, outDim: out }];
}

/** VICReg's expander (Bardes et al. 2022, §4.2): `numLayers` Linear layers of 8192, BN and ReLU between them. */
export class VICRegProjectionHead extends ProjectionHead {
  constructor(o: Dims & { numLayers?: number } = {}) {
    super(mlp(o.inputDim ?? 2048, o.hiddenDim ?? 8192, o.outputDim ?? 8192, o.numLayers ?? 3, 'VICRegProjectionHead'));
  }
}

/** NNCLR's projector (Dwibedi et al. 2021, §4.1): `numLayers` (3) layers, 2048 → 2048 → 256, BN on all, ReLU on all but the last. */
export class NNCLRProjectionHead extends ProjectionHead {
  constructor(o: Dims & { numLayers?: 2 | 3 } = {}) {
    const h = o.hiddenDim ?? 2048;
    const out = o.outputDim ?? 256;
    const n = o.numLayers ?? 3;
    if (n !== 2 && n !== 3) throw new RangeError(`NNCLRProjectionHead: numLayers must be 2 or 3, got ${String(n)}`);
    super([
      { inDim: o.inputDim ?? 2048, outDim: h, norm: bn(h), activation: relu() },
      ...(n === 3 ? [{ inDim: h, outDim: h, norm: bn(h), activation: relu() }] : []),
      { inDim: h, outDim: out, norm: bn(out) },
    ]);
  }
}

/** NNCLR's predictor (§4.1): 256 → 4096 → 256, BN and ReLU on the hidden layer. */
export class NNCLRPredictionHead extends ProjectionHead {
  constructor(o: Dims = {}) {
    const h = o.hiddenDim ?? 4096;
    super([{ inDim: o.inputDim ?? 256, outDim: h, norm: bn(h), activation: relu() }, { inDim: h, outDim: o.outputDim ?? 256 }]);
  }
}

/**
 * A Linear layer with weight normalisation (Salimans & Kingma 2016) and no bias, as
 * `torch.nn.utils.weight_norm(nn.Linear(in, out, bias=False))`: W = g · v / ‖v‖ (rows).
 * `weight_g` [out, 1] is frozen at 1 when `normLastLayer` (DINO's default), so W = v / ‖v‖.
 */
export class WeightNormLinear extends nn.Module {
  weight_g: nn.Parameter;
  weight_v: nn.Parameter;
  constructor(inDim: number, outDim: number, o: { freezeG?: boolean } = {}) {
    super();
    // v starts as nn.Linear's initialisation (Kaiming-uniform); the parameters view the tensors' storage
    this.weight_v = new nn.Parameter(new nn.Linear(inDim, outDim, { bias: false }).weight);
    this.weight_g = torch.scope(() => new nn.Parameter(torch.ones([outDim, 1]), !(o.freezeG ?? true)));
  }
  forward(x: Tensor): Tensor {
    return torch.scope(() => torch.functional.linear(x, this.weight_v.div(this.weight_v.norm(2, 1, { keepdim: true })).mul(this.weight_g)));
  }
}

/**
 * DINO's head (Caron et al. 2021, §3.1 and Appendix): an MLP of `numLayers` (3) layers
 * in → 2048 → 2048 → 256 (GELU, BN optional: lightly uses it for ResNets), L2 normalisation, then a
 * weight-normalised Linear 256 → 65536 without bias.
 *
 * `freezeLastLayer` (lightly's `freeze_last_layer`; the paper trains with 1): for epochs below it,
 * `cancelLastLayerGradients(epoch)`, called between backward and the optimizer step, drops the last
 * layer's gradients so the optimizer leaves it as initialised (DINO §3.1: "freezing the last layer
 * during the first epoch" stabilises training). Default 0: never frozen.
 */
export class DINOProjectionHead extends nn.Module {
  layers: nn.Sequential;
  last_layer: WeightNormLinear;
  readonly outputDim: number;
  readonly freezeLastLayer: number;
  constructor(o: Dims & { bottleneckDim?: number; batchNorm?: boolean; normLastLayer?: boolean; numLayers?: 2 | 3; freezeLastLayer?: number } = {}) {
    super();
    this.freezeLastLayer = o.freezeLastLayer ?? 0;
    if (!Number.isInteger(this.freezeLastLayer) || this.freezeLastLayer < 0) throw new RangeError(`DINOProjectionHead: freezeLastLayer must be a non-negative integer (epochs), got ${this.freezeLastLayer}`);
    const h = o.hiddenDim ?? 2048;
    const b = o.bottleneckDim ?? 256;
    this.outputDim = o.outputDim ?? 65536;
    const norm = (): nn.Module | null => (o.batchNorm ? bn(h) : null);
    const n = o.numLayers ?? 3;
    if (n !== 2 && n !== 3) throw new RangeError(`DINOProjectionHead: numLayers must be 2 or 3, got ${String(n)}`);
    this.layers = new ProjectionHead([
      { inDim: o.inputDim ?? 2048, outDim: h, norm: norm(), activation: new nn.GELU(), bias: true },
      ...(n === 3 ? [{ inDim: h, outDim: h, norm: norm(), activation: new nn.GELU(), bias: true }] : []),
      { inDim: h, outDim: b, bias: true },
    ]).layers;
    this.last_layer = new WeightNormLinear(b, this.outputDim, { freezeG: o.normLastLayer ?? true });
  }
  forward(x: Tensor): Tensor {
    return this.last_layer.forward(torch.functional.normalize(this.layers.forward(x)));
  }

  /** Drops the last layer's gradients (p.grad = null, so the optimizer skips it) while `epoch` < `freezeLastLayer`. */
  cancelLastLayerGradients(epoch: number): void {
    if (epoch >= this.freezeLastLayer) return;
    for (const p of this.last_layer.parameters()) p.grad = null;
  }
}
