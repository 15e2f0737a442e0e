/**
 * Zero-shot classification with a CLIP model (Radford et al. 2021, §3.1), as tensors: each
 * label becomes text prompts ("a photo of a {label}."), whose normalised embeddings are averaged
 * over the templates and normalised again (prompt ensembling, §3.1.4) into a class matrix
 * W [C, D]; an image's logits are exp(t) · normalize(f) · Wᵀ and softmax gives the
 * probabilities.
 *
 * This file returns tensors only. Images in, `Results` out is the product layer's: `Model.load`
 * + `model.setClasses(labels)` + `predict` (`api/clip.ts`, `ZeroShotPredictor`).
 */
import * as torch from '../../torch/index.js';
import type { Tensor } from '../../torch/index.js';
import type { CLIPModel } from './model.js';

/** The 80 ImageNet prompt templates of the CLIP paper (the ensemble of §3.1.4). */
export const IMAGENET_TEMPLATES: readonly string[] = [
  'a bad photo of a {}.', 'a photo of many {}.', 'a sculpture of a {}.', 'a photo of the hard to see {}.', 'a low resolution photo of the {}.',
  'a rendering of a {}.', 'graffiti of a {}.', 'a bad photo of the {}.', 'a cropped photo of the {}.', 'a tattoo of a {}.',
  'the embroidered {}.', 'a photo of a hard to see {}.', 'a bright photo of a {}.', 'a photo of a clean {}.', 'a photo of a dirty {}.',
  'a dark photo of the {}.', 'a drawing of a {}.', 'a photo of my {}.', 'the plastic {}.', 'a photo of the cool {}.',
  'a close-up photo of a {}.', 'a black and white photo of the {}.', 'a painting of the {}.', 'a painting of a {}.', 'a pixelated photo of the {}.',
  'a sculpture of the {}.', 'a bright photo of the {}.', 'a cropped photo of a {}.', 'a plastic {}.', 'a photo of the dirty {}.',
  'a jpeg corrupted photo of a {}.', 'a blurry photo of the {}.', 'a photo of the {}.', 'a good photo of the {}.', 'a rendering of the {}.',
  'a {} in a video game.', 'a photo of one {}.', 'a doodle of a {}.', 'a close-up photo of the {}.', 'a photo of a {}.',
  'the origami {}.', 'the {} in a video game.', 'a sketch of a {}.', 'a doodle of the {}.', 'a origami {}.',
  'a low resolution photo of a {}.', 'the toy {}.', 'a rendition of the {}.', 'a photo of the clean {}.', 'a photo of a large {}.',
  'a rendition of a {}.', 'a photo of a nice {}.', 'a photo of a weird {}.', 'a blurry photo of a {}.', 'a cartoon {}.',
  'art of a {}.', 'a sketch of the {}.', 'a embroidered {}.', 'a pixelated photo of a {}.', 'itap of the {}.',
  'a jpeg corrupted photo of the {}.', 'a good photo of a {}.', 'a plushie {}.', 'a photo of the nice {}.', 'a photo of the small {}.',
  'a photo of the weird {}.', 'the cartoon {}.', 'art of the {}.', 'a drawing of the {}.', 'a photo of the large {}.',
  'a black and white photo of a {}.', 'the plushie {}.', 'a dark photo of a {}.', 'itap of a {}.', 'graffiti of the {}.',
  'a toy {}.', 'itap of my {}.', 'a photo of a cool {}.', 'a photo of a small {}.', 'a tattoo of the {}.',
];

/** The default: one template, as the paper's baseline and HF's zero-shot pipeline. */
export const DEFAULT_TEMPLATES: readonly string[] = ['a photo of a {}.'];

/** Trimmed labels; a RangeError naming the fix unless they are a non-empty list of non-empty strings. */
export function checkLabels(labels: readonly string[], what = 'zeroShot'): string[] {
  if (!Array.isArray(labels) || labels.length === 0 || labels.some((l) => typeof l !== 'string' || l.trim() === '')) {
    throw new RangeError(`${what}: pass a non-empty list of labels (non-empty strings), e.g. ["cat", "dog"]`);
  }
  return labels.map((l) => l.trim());
}

/**
 * The zero-shot classifier: class embeddings W [C, projection_dim] of `labels`, L2-normalised,
 * each the normalised mean of its prompts' normalised embeddings (`CLIPModel.classEmbeddings`).
 * Compute it once per label set and reuse it for every image.
 */
export function zeroShotClassifier(model: CLIPModel, labels: readonly string[], templates: readonly string[] = DEFAULT_TEMPLATES): Tensor {
  return model.classEmbeddings(checkLabels(labels), templates);
}

/**
 * Zero-shot logits [N, C] = exp(logit_scale) · normalize(imageFeatures) · classifierᵀ, without
 * gradients. `imageFeatures` [N, projection_dim] (`getImageFeatures`, normalised or not);
 * `classifier` [C, projection_dim] from `zeroShotClassifier`. softmax(-1) gives the probabilities.
 */
export function zeroShotLogits(model: CLIPModel, imageFeatures: Tensor, classifier: Tensor): Tensor {
  return torch.noGrad(() => torch.scope(() =>
    torch.functional.normalize(imageFeatures, { dim: -1 }).matmul(classifier.t()).mul(model.logit_scale.exp())));
}
