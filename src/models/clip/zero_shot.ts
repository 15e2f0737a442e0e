/**
 * Zero-shot classification with a CLIP model (Radford et al. 2021, §3.1): each label becomes
 * text prompts ("a photo of a {label}."), the image is assigned to the label whose prompt
 * embedding is most similar, and softmax(exp(t) · cos) gives the probabilities. With several
 * templates the prompt embeddings are ensembled (the mean of the normalised embeddings,
 * normalised again: §3.1.4).
 *
 * Results come in the same `Results`/`Probs` shape as `Model.predict` (`names` are the labels,
 * `probs.top1` the best label's index, `embedding` the image's CLIP embedding), so this module
 * reaches up to the product layer's `Results` and image sources (`src/api/`) on purpose.
 */
import * as torch from '../../torch/index.js';
import type { Tensor } from '../../torch/index.js';
import { Probs, Results } from '../../api/results.js';
import { expandSources, fetchImage, type FetchOptions, type Source, type SourceItem } from '../../data/sources.js';
import { decodeImage } from '../../data/decode.js';
import type { RawImage } from '../../data/types.js';
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

export interface ZeroShotOptions {
  /** Prompt templates with `{}` for the label (default ['a photo of a {}.']; `IMAGENET_TEMPLATES` for the paper's ensemble). */
  templates?: readonly string[];
  /** Images per forward pass (default 32). */
  batchSize?: number;
  /** For URL sources. */
  fetch?: FetchOptions;
}

/** A decoded image with where it came from. */
export interface LoadedRawImage {
  path: string;
  image: RawImage;
  origShape: [number, number];
}

/** Decodes one source item at full resolution with `channels` channels. */
async function decodeItem(item: SourceItem, channels: 1 | 3, o: FetchOptions): Promise<LoadedRawImage> {
  let image: RawImage;
  if (item.kind === 'tensor') image = item.image;
  else if (item.kind === 'file') image = await decodeImage(item.path, { channels });
  else {
    const bytes = item.kind === 'url' ? await fetchImage(item.path, o) : item.bytes;
    image = await decodeImage(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { channels, name: item.path });
  }
  return { path: item.path, image, origShape: [image.height, image.width] };
}

/**
 * The images of `source` (paths, folders, globs, URLs, buffers, tensors, arrays of these: as
 * `Model.predict`), decoded at full resolution with `channels` channels, `batchSize` at a time
 * (a large folder is never held in memory whole).
 */
export async function* rawImageBatches(source: Source, channels: 1 | 3 = 3, batchSize = 32, o: FetchOptions = {}): AsyncGenerator<LoadedRawImage[]> {
  let items: SourceItem[] = [];
  for await (const item of expandSources(source)) {
    items.push(item);
    if (items.length === batchSize) {
      yield await Promise.all(items.map((it) => decodeItem(it, channels, o)));
      items = [];
    }
  }
  if (items.length > 0) yield await Promise.all(items.map((it) => decodeItem(it, channels, o)));
}

/** All images of `source`, decoded (see `rawImageBatches`; this one holds them all). */
export async function loadRawImages(source: Source, channels: 1 | 3 = 3, o: FetchOptions = {}): Promise<LoadedRawImage[]> {
  const out: LoadedRawImage[] = [];
  for await (const b of rawImageBatches(source, channels, 32, o)) out.push(...b);
  return out;
}

/**
 * Classifies `images` into `labels` it was never trained on; one `Results` per image, with
 * `names` = labels and `probs` over them (`r.names[r.probs.top1]`, `r.probs.top5conf`).
 * Images are decoded, preprocessed and embedded `batchSize` at a time.
 */
export async function zeroShot(model: CLIPModel, images: Source, labels: readonly string[], o: ZeroShotOptions = {}): Promise<Results[]> {
  if (!Array.isArray(labels) || labels.length === 0 || labels.some((l) => typeof l !== 'string' || l.trim() === '')) {
    throw new RangeError('zeroShot: pass a non-empty list of labels (non-empty strings), e.g. ["cat", "dog"]');
  }
  const bs = o.batchSize ?? 32;
  const names = labels.map((l) => l.trim());
  const tText = performance.now();
  const classes = model.classEmbeddings(names, o.templates ?? DEFAULT_TEMPLATES).keep();
  const textMs = performance.now() - tText;
  const d = model.projectionDim;
  const c = names.length;
  const results: Results[] = [];
  try {
    let t0 = performance.now();
    for await (const chunk of rawImageBatches(images, model.processor.config.channels, bs, o.fetch)) {
      const tp = performance.now();
      const { probs, emb } = torch.scope(() => {
        const pixels = model.processor.preprocess(chunk.map((it) => it.image));
        const e = model.encodeImages(pixels);
        const p = torch.noGrad(() => e.matmul(classes.t()).mul(model.logit_scale.exp()).softmax(-1));
        return { probs: p.toFloat32Array(), emb: e.toFloat32Array() };
      });
      const tEnd = performance.now();
      const n = chunk.length;
      const textShare = results.length === 0 ? textMs / n : 0;
      chunk.forEach((it, k) => {
        results.push(new Results({
          path: it.path, origShape: it.origShape, names,
          probs: new Probs(probs.slice(k * c, (k + 1) * c)), embedding: emb.slice(k * d, (k + 1) * d),
          // preprocess: decoding and resizing; inference: both towers (the labels' text share spread over the first batch)
          speed: { preprocess: (tp - t0) / n, inference: (tEnd - tp) / n + textShare, postprocess: 0 },
        }));
      });
      t0 = performance.now();
    }
    if (results.length === 0) throw new RangeError('zeroShot: the source holds no images');
    return results;
  } finally {
    classes.dispose();
  }
}

/** Class embeddings for `labels` as a plain matrix (for reuse across many calls): see `CLIPModel.classEmbeddings`. */
export function zeroShotClassifier(model: CLIPModel, labels: readonly string[], templates: readonly string[] = DEFAULT_TEMPLATES): Tensor {
  return model.classEmbeddings(labels, templates);
}
