/**
 * ResNet backbones (He et al. 2016, "Deep Residual Learning for Image Recognition"), with
 * torchvision's parameter names (`conv1`, `bn1`, `layer1.0.conv1.weight`, `downsample.0`), so
 * torchvision checkpoints map 1:1 (without `fc`: a backbone returns pooled features).
 *
 * - `stem: 'imagenet'`: 7×7/2 conv + 3×3/2 max-pool, for ≥ 96 px images.
 * - `stem: 'cifar'`: 3×3/1 conv and no max-pool, for small images (CIFAR, 28×28 Fashion-MNIST),
 *   as in the SimCLR paper's CIFAR-10 experiments (Appendix B.9).
 * - `stem: 'cifar-stride2'`: the same 3×3 conv with stride 2, no max-pool. Every stage then runs
 *   at a quarter of the pixels (≈ 3.5× the training images/s at 28×28, measured), which buys
 *   more epochs in a fixed time budget at the cost of resolution.
 * - `width`: channels of the first stage (64 in the paper); stages use width × [1, 2, 4, 8].
 * - `inChannels`: any number of input channels (1 for grayscale).
 * - `featureStages` / `featureGrid`: what `forward` pools (timm's `global_pool` plays this part).
 *   The default (1 / 1) is the usual global average pool of the last stage. Otherwise the maps of
 *   the last `featureStages` stages are each average-pooled to a `featureGrid`×`featureGrid` grid,
 *   flattened and concatenated: the spatially pooled conv features of the linear-classifier
 *   benchmarks of Goyal et al. 2019 ("Scaling and Benchmarking Self-Supervised Visual
 *   Representation Learning", §4), and several blocks' outputs together as in DINO's linear
 *   evaluation (Caron et al. 2021, concatenated [CLS] tokens of the last 4 blocks). It keeps where
 *   a feature fired (sleeve vs. collar), which a global pool averages away; the weights are the
 *   same either way, so a checkpoint loads with any choice.
 *
 * forward(x [N, inChannels, H, W]) → features [N, featureDim]; with the defaults
 * featureDim = 8·width·expansion, in general Σ over the pooled stages of channels·featureGrid².
 * stages(x) → the four stages' maps [N, C_s, H_s, W_s] (C_s = width·2^(s−1)·expansion).
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

/** The input stem: see the module comment. */
export type ResNetStem = 'imagenet' | 'cifar' | 'cifar-stride2';
export const RESNET_STEMS: readonly ResNetStem[] = ['imagenet', 'cifar', 'cifar-stride2'];

export interface ResNetOptions {
  depth?: 18 | 34 | 50;
  stem?: ResNetStem;
  width?: number;
  inChannels?: number;
  /** How many of the last stages `forward` pools (1..4; default 1, the last stage only). */
  featureStages?: number;
  /** The side of the average-pool grid per stage (default 1: global average pooling). */
  featureGrid?: number;
}

/** Two 3×3 convs with an identity (or 1×1 conv) shortcut; expansion 1 (ResNet-18/34). */
export class BasicBlock extends nn.Module {
  static readonly expansion = 1;
  conv1: nn.Conv2d;
  bn1: nn.BatchNorm2d;
  conv2: nn.Conv2d;
  bn2: nn.BatchNorm2d;
  downsample: nn.Sequential | null;

  constructor(inPlanes: number, planes: number, stride = 1) {
    super();
    this.conv1 = new nn.Conv2d(inPlanes, planes, 3, { stride, padding: 1, bias: false });
    this.bn1 = new nn.BatchNorm2d(planes);
    this.conv2 = new nn.Conv2d(planes, planes, 3, { padding: 1, bias: false });
    this.bn2 = new nn.BatchNorm2d(planes);
    this.downsample = stride !== 1 || inPlanes !== planes
      ? new nn.Sequential(new nn.Conv2d(inPlanes, planes, 1, { stride, bias: false }), new nn.BatchNorm2d(planes))
      : null;
  }

  forward(x: Tensor): Tensor {
    const out = this.bn2.forward(this.conv2.forward(this.bn1.forward(this.conv1.forward(x)).relu_()));
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return out.add_(identity).relu_();
  }
}

/** 1×1 → 3×3 → 1×1 convs with expansion 4 (ResNet-50); the stride sits on the 3×3 (v1.5). */
export class Bottleneck extends nn.Module {
  static readonly expansion = 4;
  conv1: nn.Conv2d;
  bn1: nn.BatchNorm2d;
  conv2: nn.Conv2d;
  bn2: nn.BatchNorm2d;
  conv3: nn.Conv2d;
  bn3: nn.BatchNorm2d;
  downsample: nn.Sequential | null;

  constructor(inPlanes: number, planes: number, stride = 1) {
    super();
    const out = planes * Bottleneck.expansion;
    this.conv1 = new nn.Conv2d(inPlanes, planes, 1, { bias: false });
    this.bn1 = new nn.BatchNorm2d(planes);
    this.conv2 = new nn.Conv2d(planes, planes, 3, { stride, padding: 1, bias: false });
    this.bn2 = new nn.BatchNorm2d(planes);
    this.conv3 = new nn.Conv2d(planes, out, 1, { bias: false });
    this.bn3 = new nn.BatchNorm2d(out);
    this.downsample = stride !== 1 || inPlanes !== out
      ? new nn.Sequential(new nn.Conv2d(inPlanes, out, 1, { stride, bias: false }), new nn.BatchNorm2d(out))
      : null;
  }

  forward(x: Tensor): Tensor {
    let out = this.bn1.forward(this.conv1.forward(x)).relu_();
    out = this.bn2.forward(this.conv2.forward(out)).relu_();
    out = this.bn3.forward(this.conv3.forward(out));
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return out.add_(identity).relu_();
  }
}

const LAYERS: Record<18 | 34 | 50, [typeof BasicBlock | typeof Bottleneck, number[]]> = {
  18: [BasicBlock, [2, 2, 2, 2]],
  34: [BasicBlock, [3, 4, 6, 3]],
  50: [Bottleneck, [3, 4, 6, 3]],
};

export class ResNet extends nn.Module {
  readonly featureDim: number;
  readonly config: Required<ResNetOptions>;
  conv1: nn.Conv2d;
  bn1: nn.BatchNorm2d;
  maxpool: nn.MaxPool2d | null;
  layer1: nn.Sequential;
  layer2: nn.Sequential;
  layer3: nn.Sequential;
  layer4: nn.Sequential;

  constructor(opts: ResNetOptions = {}) {
    super();
    const depth = opts.depth ?? 18;
    const stem = opts.stem ?? 'imagenet';
    const width = opts.width ?? 64;
    const inChannels = opts.inChannels ?? 3;
    if (!(depth in LAYERS)) throw new RangeError(`ResNet: depth must be 18, 34 or 50, got ${depth}`);
    if (!RESNET_STEMS.includes(stem)) throw new RangeError(`ResNet: stem must be one of ${RESNET_STEMS.map((x) => `'${x}'`).join(', ')}, got '${stem}'`);
    if (!Number.isInteger(width) || width < 1) throw new RangeError(`ResNet: width must be a positive integer, got ${width}`);
    if (!Number.isInteger(inChannels) || inChannels < 1) throw new RangeError(`ResNet: inChannels must be a positive integer, got ${inChannels}`);
    const featureStages = opts.featureStages ?? 1;
    const featureGrid = opts.featureGrid ?? 1;
    if (!Number.isInteger(featureStages) || featureStages < 1 || featureStages > 4) {
      throw new RangeError(`ResNet: featureStages must be 1, 2, 3 or 4 (how many of the last stages to pool), got ${featureStages}`);
    }
    if (!Number.isInteger(featureGrid) || featureGrid < 1) throw new RangeError(`ResNet: featureGrid must be a positive integer (1 = global average pooling), got ${featureGrid}`);
    this.config = { depth, stem, width, inChannels, featureStages, featureGrid };
    const [Block, counts] = LAYERS[depth];
    this.conv1 = stem === 'imagenet'
      ? new nn.Conv2d(inChannels, width, 7, { stride: 2, padding: 3, bias: false })
      : new nn.Conv2d(inChannels, width, 3, { stride: stem === 'cifar-stride2' ? 2 : 1, padding: 1, bias: false });
    this.bn1 = new nn.BatchNorm2d(width);
    this.maxpool = stem === 'imagenet' ? new nn.MaxPool2d(3, { stride: 2, padding: 1 }) : null;
    let inPlanes = width;
    const stageChannels: number[] = [];
    const stage = (mult: number, n: number, stride: number): nn.Sequential => {
      const blocks: nn.Module[] = [];
      for (let i = 0; i < n; i++) {
        blocks.push(new Block(inPlanes, width * mult, i === 0 ? stride : 1));
        inPlanes = width * mult * Block.expansion;
      }
      stageChannels.push(inPlanes);
      return new nn.Sequential(...blocks);
    };
    this.layer1 = stage(1, counts[0]!, 1);
    this.layer2 = stage(2, counts[1]!, 2);
    this.layer3 = stage(4, counts[2]!, 2);
    this.layer4 = stage(8, counts[3]!, 2);
    this.featureDim = stageChannels.slice(4 - featureStages).reduce((a, c) => a + c * featureGrid * featureGrid, 0);
    // Zero-init is not applied to the last BN of each block (torchvision's default).
  }

  forward(x: Tensor): Tensor {
    const { featureStages, featureGrid } = this.config;
    const pooled = this.stages(x).slice(4 - featureStages).map((h) => nn.functional.adaptiveAvgPool2d(h, featureGrid).flatten(1));
    return pooled.length === 1 ? pooled[0]! : torch.cat(pooled, 1);
  }

  /** The maps after layer1..layer4, [N, C_s, H_s, W_s] each. */
  stages(x: Tensor): Tensor[] {
    let h = this.#stem(x);
    return [this.layer1, this.layer2, this.layer3, this.layer4].map((layer) => (h = layer.forward(h)));
  }

  #stem(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.size(1) !== this.config.inChannels) {
      throw new RangeError(`ResNet: expected input [N, ${this.config.inChannels}, H, W], got [${x.shape.join(', ')}]`);
    }
    const h = this.bn1.forward(this.conv1.forward(x)).relu_();
    return this.maxpool ? this.maxpool.forward(h) : h;
  }
}

export const resnet18 = (o: Omit<ResNetOptions, 'depth'> = {}): ResNet => new ResNet({ ...o, depth: 18 });
export const resnet34 = (o: Omit<ResNetOptions, 'depth'> = {}): ResNet => new ResNet({ ...o, depth: 34 });
export const resnet50 = (o: Omit<ResNetOptions, 'depth'> = {}): ResNet => new ResNet({ ...o, depth: 50 });
