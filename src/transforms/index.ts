/**
 * Batched augmentations on tensors (Kornia's approach): every transform runs on a whole batch
 * `[N, C, H, W]` at once with per-sample random parameters from libtorch's generator, on the
 * batch's device. Multi-view transforms (SimCLR, MoCo v2, DINO) return a list of views.
 */
export {
  type Transform, type RandomTransform, Compose, ToFloat, toFloat, checkBatch, mapChunks, samplesPerChunk, DEFAULT_MAX_CHUNK_BYTES,
} from './core.js';
export { RandomAugmentation, selectRows, type RandomAugmentationOptions, type Selection } from './augmentation.js';
export {
  RandomResizedCrop, RandomHorizontalFlip, RandomVerticalFlip, RandomRotation, Resize, CenterCrop, LOOP_MIN_PIXELS,
  type RandomResizedCropOptions, type CropParams, type FlipParams, type RotationParams, type Interpolation,
} from './geometric.js';
export {
  ColorJitter, RandomGrayscale, RandomSolarization, LUMA_WEIGHTS,
  rgbToGrayscale, rgbToHsv, hsvToRgb, adjustBrightness, adjustContrast, adjustSaturation, adjustHue,
  type ColorJitterOptions, type ColorJitterParams, type ApplyParams,
} from './color.js';
export { GaussianBlur, gaussianKernel1d, type GaussianBlurOptions, type GaussianBlurParams } from './filter.js';
export {
  MultiViewTransform, SimCLRTransform, MoCoV2Transform, DINOTransform, EvalTransform, simclrView, simclrKernelSize,
  type MultiView, type SimCLRViewOptions, type SimCLRTransformOptions, type DINOTransformOptions,
} from './views.js';
export { BYOLTransform, type BYOLTransformOptions } from './byol.js';
export {
  normalize, Normalize, channelStats, checkStats, IMAGENET_STATS, FMNIST_STATS, MNIST_STATS, type NormalizeStats,
} from './normalize.js';
