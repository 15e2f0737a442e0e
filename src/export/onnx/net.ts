/**
 * A dyad checkpoint's network (`Net`: module, config, class names) as ONNX, with its
 * preprocessing in the metadata: what `dyad export` and `Model.export({ format: 'onnx' })` call.
 * A classifier exports backbone + head + softmax (`probs`); an embedder exports its backbone
 * (`features`, as `embed` returns them).
 */
import type { Net } from '../../api/net.js';
import { exportOnnx, type ExportOnnxOptions } from './export.js';
import { ExportError } from './graph.js';
import type { CLIPModel } from '../../models/clip/model.js';
import type { SelfSupervisedMethod } from '../../methods/index.js';

export interface ExportNetOptions extends Omit<ExportOnnxOptions, 'inputShape' | 'metadata'> {
  /** Image side (default: the checkpoint's imageSize). A ResNet runs at any size; a ViT only at its own. */
  imgsz?: number;
  /** The example batch of the traced shape (default 1). */
  batch?: number;
  metadata?: ExportOnnxOptions['metadata'];
}

export function exportNetOnnx(net: Pick<Net, 'task' | 'module' | 'config' | 'names'>, o: ExportNetOptions = {}): Uint8Array {
  const c = net.config;
  const size = o.imgsz ?? c.imageSize;
  if (net.task === 'clip') throw new ExportError('a CLIP model exports as two files (image and text towers): use exportClipOnnx(clip, dir), model.export({ format: \'onnx\', out: dir }) or dyad export');
  const m = net.module as Exclude<Net['module'], CLIPModel>;
  const module = net.task === 'classifier' ? m : (m as SelfSupervisedMethod).backbone;
  return exportOnnx(module, {
    ...o,
    inputShape: [o.batch ?? 1, c.channels, size, size],
    metadata: {
      mean: c.mean, std: c.std, image_size: size, channels: c.channels, backbone: c.backbone,
      ...(net.names.length > 0 && { names: net.names }),
      ...o.metadata,
    },
  });
}
