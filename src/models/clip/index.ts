/** CLIP: the HF-compatible model, its tokenizer and preprocessing, zero-shot classification, and the search embedder. */
export * from './config.js';
export * from './tokenizer.js';
export { CLIPTextEmbeddings, CLIPTextTransformer, type TextOutput } from './text.js';
export { CLIPImageProcessor, resizeOutputSize } from './preprocess.js';
export {
  CLIPModel, CLIPError,
  type CLIPOutput, type CLIPVisionTower, type CLIPModelOptions, type FromPretrainedOptions,
} from './model.js';
export { zeroShot, zeroShotClassifier, loadRawImages, rawImageBatches, IMAGENET_TEMPLATES, DEFAULT_TEMPLATES, type ZeroShotOptions, type LoadedRawImage } from './zero_shot.js';
export { CLIPEmbedder, type CLIPEmbedderOptions } from './embedder.js';
