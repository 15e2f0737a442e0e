/**
 * A dyad checkpoint's network (`Net`: module, config, class names) as ONNX, with its
 * preprocessing in the metadata: what `dyad export` and `Model.export({ format: 'onnx' })` call.
 * A classifier exports backbone + head + softmax (`probs`); an embedder exports its backbone
 * (`features`, as `embed` returns them).
 */
import type { Net } from '../../api/net.js';
import { exportOnnx, type ExportOnnxOptions } from './export.js';

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
  const module = net.task === 'classifier' ? net.module : net.module.backbone;
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
