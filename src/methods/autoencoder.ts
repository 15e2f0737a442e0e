/**
 * The autoencoder baseline: reconstruction instead of discrimination. The encoder is the same
 * backbone as the contrastive methods (its pooled features are the code and the representation),
 * a `ConvDecoder` maps the code back to an image, and the loss is the mean squared error against
 * the (normalised) input view (Hinton & Salakhutdinov 2006; Masci et al. 2011). One view per image.
 */
import type { Tensor } from '../torch/index.js';
import * as torch from '../torch/index.js';
import { ConvDecoder } from '../models/decoder.js';
import { SelfSupervisedMethod, type Backbone, type StepContext } from './method.js';

export interface AutoencoderOptions {
  imageSize: number;
  channels: number;
  /** Channels of the decoder's first map (default 128). */
  decoderChannels?: number;
}

export class Autoencoder extends SelfSupervisedMethod {
  readonly methodName = 'autoencoder';
  override readonly numViews = 1;
  backbone: Backbone;
  decoder: ConvDecoder;

  constructor(backbone: Backbone, opts: AutoencoderOptions) {
    super();
    this.backbone = backbone;
    this.decoder = new ConvDecoder({ inputDim: backbone.featureDim, imageSize: opts.imageSize, channels: opts.channels, startChannels: opts.decoderChannels });
  }

  /** x [N, C, S, S] → its reconstruction [N, C, S, S]. */
  reconstruct(x: Tensor): Tensor {
    return this.decoder.forward(this.backbone.forward(x));
  }

  trainingStep(views: Tensor[], _ctx: StepContext): Tensor {
    if (views.length !== 1) throw new RangeError(`Autoencoder: expected 1 view, got ${views.length}`);
    const x = views[0]!;
    return torch.functional.mseLoss(this.reconstruct(x), x.contiguous());
  }
}
