/**
 * CLIP's image preprocessing, as Hugging Face's `CLIPImageProcessor` (and OpenAI's
 * `clip.load` transform): RGB; shortest side resized to `size` (224) with bicubic
 * interpolation (antialiased, as PIL resizes; the result rounded to 8 bits, as PIL's is);
 * centre crop to `cropSize` (224; top/left = ⌊(side − crop)/2⌋, as HF); × 1/255; minus mean,
 * over std (CLIP's [0.48145466, 0.4578275, 0.40821073] / [0.26862954, 0.26130258, 0.27577711]
 * unless the checkpoint's `preprocessor_config.json` says otherwise).
 */
import * as torch from '../../torch/index.js';
import type { Tensor } from '../../torch/index.js';
import { grayToRgb, rgbToGray } from '../../data/decode.js';
import type { RawImage } from '../../data/types.js';
import { normalize } from '../../transforms/index.js';
import { parseProcessorConfig, type CLIPImageProcessorConfig } from './config.js';

const F = torch.functional;

/** Output [height, width] of HF's shortest-edge resize (`int(size · long / short)` for the long side). */
export function resizeOutputSize(height: number, width: number, size: number): [number, number] {
  if (width <= height) return [Math.floor((size * height) / width), size];
  return [size, Math.floor((size * width) / height)];
}

/** Brings a decoded image to `channels` (alpha dropped, BT.601 luma for 1 channel). */
function toChannels(img: RawImage, channels: 1 | 3): RawImage {
  let im = img;
  if (im.channels === 4) {
    const n = im.width * im.height;
    const d = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) {
      d[3 * i] = im.data[4 * i]!;
      d[3 * i + 1] = im.data[4 * i + 1]!;
      d[3 * i + 2] = im.data[4 * i + 2]!;
    }
    im = { data: d, width: im.width, height: im.height, channels: 3 };
  }
  if (channels === 3 && im.channels === 1) return grayToRgb(im);
  if (channels === 1 && im.channels === 3) return rgbToGray(im);
  return im;
}

export class CLIPImageProcessor {
  readonly config: CLIPImageProcessorConfig;

  constructor(config: Partial<CLIPImageProcessorConfig> = {}) {
    this.config = { ...parseProcessorConfig({}), ...config };
    const c = this.config;
    if (c.mean.length !== c.channels || c.std.length !== c.channels) {
      throw new RangeError(`CLIPImageProcessor: mean and std need ${c.channels} values (one per channel), got ${c.mean.length} and ${c.std.length}`);
    }
  }

  /** From an HF `preprocessor_config.json` object. */
  static fromHF(raw: unknown, imageSize = 224, channels: 1 | 3 = 3): CLIPImageProcessor {
    return new CLIPImageProcessor(parseProcessorConfig(raw, imageSize, channels));
  }

  /** One decoded image (HWC uint8) → [C, crop, crop] float32. */
  preprocessOne(image: RawImage): Tensor {
    const c = this.config;
    const img = toChannels(image, c.channels);
    return torch.scope(() => {
      let x = torch.tensor(img.data, { shape: [img.height, img.width, img.channels] }).permute(2, 0, 1).unsqueeze(0).to('float32');
      if (c.doResize) {
        const [h, w] = resizeOutputSize(img.height, img.width, c.size);
        if (h !== img.height || w !== img.width) {
          x = c.resample === 'nearest' ? F.interpolate(x, { size: [h, w], mode: 'nearest' })
            : F.interpolate(x, { size: [h, w], mode: c.resample, antialias: true, alignCorners: false }).clamp({ min: 0, max: 255 }).round();
        }
      }
      if (c.doCenterCrop) {
        const [h, w] = [x.size(2), x.size(3)];
        const s = c.cropSize;
        if (h < s || w < s) {
          // HF pads with zeros when the image is smaller than the crop
          const ph = Math.max(0, s - h), pw = Math.max(0, s - w);
          x = F.pad(x, [Math.floor(pw / 2), pw - Math.floor(pw / 2), Math.floor(ph / 2), ph - Math.floor(ph / 2)]);
        }
        const top = Math.floor((x.size(2) - s) / 2);
        const left = Math.floor((x.size(3) - s) / 2);
        x = x.narrow(2, top, s).narrow(3, left, s);
      }
      return normalize(x, c.doNormalize ? c : null, { rescale: c.rescaleFactor }).squeeze(0).contiguous();
    });
  }

  /** Decoded images → pixel values [N, C, crop, crop] for `CLIPModel.getImageFeatures`. */
  preprocess(images: readonly RawImage[]): Tensor {
    if (images.length === 0) throw new RangeError('CLIPImageProcessor.preprocess: no images');
    return torch.scope(() => torch.stack(images.map((im) => this.preprocessOne(im)), 0));
  }

  /**
   * A batch of uint8 [N, C, H, W] images already at the crop size (a training batch): only
   * rescaling and normalisation.
   */
  normalizeBatch(images: Tensor): Tensor {
    const c = this.config;
    return normalize(images, c.doNormalize ? c : null, { rescale: c.rescaleFactor, who: 'CLIPImageProcessor.normalizeBatch' });
  }
}
