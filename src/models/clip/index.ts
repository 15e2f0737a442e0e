/** CLIP: the HF-compatible model, its tokenizer and preprocessing, and zero-shot classification as tensors (its product side, `CLIPEmbedder` and zero-shot `Model`s, is in src/api/). */
export * from './config.js';
export * from './tokenizer.js';
export { CLIPTextEmbeddings, CLIPTextTransformer, type TextOutput } from './text.js';
export { CLIPImageProcessor, resizeOutputSize } from './preprocess.js';
export {
  CLIPModel, CLIPError,
  type CLIPOutput, type CLIPVisionTower, type CLIPModelOptions, type FromPretrainedOptions,
} from './model.js';
export { zeroShotClassifier, zeroShotLogits, IMAGENET_TEMPLATES, DEFAULT_TEMPLATES } from './zero_shot.js';
