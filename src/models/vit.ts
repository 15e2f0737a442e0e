/**
 * Vision Transformer backbone (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words"), laid
 * out with Hugging Face CLIPVisionTransformer's names so the CLIP image tower is this class:
 *   embeddings.class_embedding, embeddings.patch_embedding.weight, embeddings.position_embedding.weight,
 *   pre_layrnorm, encoder.layers.N..., post_layernorm
 *
 * forward(x [N, C, H, W]) → the class token after `post_layernorm`, [N, dim] (featureDim = dim).
 * Sizes: `vitTiny` (dim 192, depth 12, heads 3), `vitSmall` (384, 12, 6), `vitBase` (768, 12, 12).
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { TransformerEncoder, type Activation } from './transformer.js';

export interface ViTOptions {
  imageSize?: number;
  patchSize?: number;
  inChannels?: number;
  dim?: number;
  depth?: number;
  heads?: number;
  mlpDim?: number;
  activation?: Activation;
  layerNormEps?: number;
  /** A bias on the patch projection (CLIP has none; the original ViT has one). */
  patchBias?: boolean;
}

export class ViTEmbeddings extends nn.Module {
  class_embedding: nn.Parameter;
  patch_embedding: nn.Conv2d;
  position_embedding: nn.Embedding;
  readonly numPatches: number;
  constructor(o: Required<ViTOptions>) {
    super();
    this.numPatches = (o.imageSize / o.patchSize) ** 2;
    this.class_embedding = torch.scope(() => new nn.Parameter(torch.randn([o.dim]).mul(o.dim ** -0.5))); // the scope frees the initial value
    this.patch_embedding = new nn.Conv2d(o.inChannels, o.dim, o.patchSize, { stride: o.patchSize, bias: o.patchBias });
    this.position_embedding = new nn.Embedding(this.numPatches + 1, o.dim);
  }
  forward(x: Tensor): Tensor {
    return torch.scope(() => {
      const n = x.size(0);
      const grid = this.patch_embedding.forward(x); // [N, dim, h, w]
      const patches = grid.flatten(2).transpose(1, 2); // [N, P, dim]
      const cls = this.class_embedding.view(1, 1, -1).expand(n, 1, -1);
      return torch.cat([cls, patches], 1).add(this.positions(grid.size(2), grid.size(3)).unsqueeze(0));
    });
  }

  /**
   * Position embeddings [1 + h·w, dim] for an h×w patch grid: the learned ones at the training
   * size; at another size (DINO's local crops) the patch positions are resampled bicubically, as
   * DINO's `interpolate_pos_encoding` does.
   */
  positions(h: number, w: number): Tensor {
    const pos = this.position_embedding.weight;
    if (h * w === this.numPatches) return pos;
    const side = Math.round(Math.sqrt(this.numPatches));
    const d = pos.size(1);
    const grid = pos.narrow(0, 1, this.numPatches).reshape([1, side, side, d]).permute([0, 3, 1, 2]);
    const resized = torch.functional.interpolate(grid, { size: [h, w], mode: 'bicubic' }).permute([0, 2, 3, 1]).reshape([h * w, d]);
    return torch.cat([pos.narrow(0, 0, 1), resized], 0);
  }
}

export class VisionTransformer extends nn.Module {
  readonly config: Required<ViTOptions>;
  readonly featureDim: number;
  embeddings: ViTEmbeddings;
  pre_layrnorm: nn.LayerNorm;
  encoder: TransformerEncoder;
  post_layernorm: nn.LayerNorm;

  constructor(opts: ViTOptions = {}) {
    super();
    const o: Required<ViTOptions> = {
      imageSize: opts.imageSize ?? 224, patchSize: opts.patchSize ?? 16, inChannels: opts.inChannels ?? 3,
      dim: opts.dim ?? 192, depth: opts.depth ?? 12, heads: opts.heads ?? 3, mlpDim: opts.mlpDim ?? 4 * (opts.dim ?? 192),
      activation: opts.activation ?? 'gelu', layerNormEps: opts.layerNormEps ?? 1e-5, patchBias: opts.patchBias ?? false,
    };
    if (o.imageSize % o.patchSize !== 0) throw new RangeError(`ViT: imageSize ${o.imageSize} is not a multiple of patchSize ${o.patchSize}`);
    this.config = o;
    this.featureDim = o.dim;
    this.embeddings = new ViTEmbeddings(o);
    this.pre_layrnorm = new nn.LayerNorm([o.dim], { eps: o.layerNormEps });
    this.encoder = new TransformerEncoder(o);
    this.post_layernorm = new nn.LayerNorm([o.dim], { eps: o.layerNormEps });
  }

  /** All tokens after the encoder, [N, 1 + P, dim] (before `post_layernorm`). */
  forwardTokens(x: Tensor): Tensor {
    this.checkInput(x);
    return torch.scope(() => this.encoder.forward(this.pre_layrnorm.forward(this.embeddings.forward(x))));
  }

  private checkInput(x: Tensor): void {
    const { imageSize, inChannels, patchSize } = this.config;
    // other sizes (multiples of the patch size) get resampled position embeddings (`ViTEmbeddings.positions`)
    if (x.ndim !== 4 || x.size(1) !== inChannels || x.size(2) % patchSize !== 0 || x.size(3) % patchSize !== 0 || x.size(2) === 0) {
      throw new RangeError(`ViT: expected input [N, ${inChannels}, ${imageSize}, ${imageSize}] (or another multiple of the patch size ${patchSize}), got [${x.shape.join(', ')}]`);
    }
  }

  /** The class token after `post_layernorm`, [N, dim]. (The last layer computes the class token's row only.) */
  forward(x: Tensor): Tensor {
    this.checkInput(x);
    return torch.scope(() => {
      const h = this.pre_layrnorm.forward(this.embeddings.forward(x));
      return this.post_layernorm.forward(this.encoder.forwardRows(h, (t) => t.narrow(1, 0, 1)).squeeze(1));
    });
  }
}

export const vitTiny = (o: ViTOptions = {}): VisionTransformer => new VisionTransformer({ dim: 192, depth: 12, heads: 3, ...o });
export const vitSmall = (o: ViTOptions = {}): VisionTransformer => new VisionTransformer({ dim: 384, depth: 12, heads: 6, ...o });
export const vitBase = (o: ViTOptions = {}): VisionTransformer => new VisionTransformer({ dim: 768, depth: 12, heads: 12, ...o });
