/**
 * A convolutional decoder for the autoencoder baseline (Hinton & Salakhutdinov 2006; the
 * convolutional form of Masci et al. 2011): features [N, inputDim] → images [N, C, S, S].
 *
 * Linear → ReLU to a [C0, s, s] map, then `ups` blocks of ConvTranspose2d(4, stride 2, padding 1)
 * → BatchNorm2d → ReLU, each doubling the side and halving the channels (at least `minChannels`),
 * then a 3×3 Conv2d to the image channels; bilinear resampling to S when s·2^ups ≠ S. s ≈ S / 2^ups
 * with `ups` chosen so that s ≤ 8 (28 px: 7 → 14 → 28).
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

export interface ConvDecoderOptions {
  inputDim: number;
  /** Output image side S and channels C. */
  imageSize: number;
  channels: number;
  /** Channels of the first map (default 128: a width-16 ResNet's last stage). */
  startChannels?: number;
  minChannels?: number;
}

export class ConvDecoder extends nn.Module {
  fc: nn.Linear;
  layers: nn.Sequential;
  readonly imageSize: number;
  readonly start: [number, number];

  constructor(o: ConvDecoderOptions) {
    super();
    if (!Number.isInteger(o.imageSize) || o.imageSize < 4) throw new RangeError(`ConvDecoder: imageSize must be an integer ≥ 4, got ${o.imageSize}`);
    const ups = Math.max(1, Math.ceil(Math.log2(o.imageSize / 8)));
    const s = Math.ceil(o.imageSize / 2 ** ups);
    let c = o.startChannels ?? 128;
    const minC = o.minChannels ?? 8;
    this.imageSize = o.imageSize;
    this.start = [c, s];
    this.fc = new nn.Linear(o.inputDim, c * s * s);
    const mods: nn.Module[] = [];
    for (let i = 0; i < ups; i++) {
      const next = Math.max(minC, Math.floor(c / 2));
      mods.push(new nn.ConvTranspose2d(c, next, 4, { stride: 2, padding: 1, bias: false }), new nn.BatchNorm2d(next), new nn.ReLU());
      c = next;
    }
    mods.push(new nn.Conv2d(c, o.channels, 3, { padding: 1 }));
    this.layers = new nn.Sequential(...mods);
  }

  /** features [N, inputDim] → [N, channels, imageSize, imageSize]. */
  forward(x: Tensor): Tensor {
    return torch.scope(() => {
      const [c, s] = this.start;
      let y = this.layers.forward(this.fc.forward(x).relu().unflatten(1, [c, s, s]));
      if (y.size(2) !== this.imageSize) y = torch.functional.interpolate(y, { size: this.imageSize, mode: 'bilinear' });
      return y;
    });
  }
}
