/**
 * `exportOnnx(module, options)`: a dyad model as an ONNX file (opset 17, IR 8) that runs without
 * libtorch: onnxruntime-node in Node, onnxruntime-web in the browser, or any ONNX runtime.
 *
 * - Image models (ResNet, ViT, a `Classifier`, torchvision's ResNet): input `images`
 *   [batch, C, H, W] float32, already normalized with the `mean`/`std` in the metadata.
 *   A classifier's output is `probs` [batch, classes] (softmax included); a backbone's is
 *   `features` [batch, featureDim] (what dyad's `embed` returns).
 * - Weights are initializers named as in the state dict; `half` (= 'compute') stores them as
 *   float16 (half the file) and computes in float16 (GPU runtimes: WebGPU, CUDA, CoreML), with
 *   float32 input and output; `half: 'weights'` only stores them so and computes in float32.
 * - `metadata` lands in `metadata_props` (strings; arrays and numbers as JSON), with
 *   `producer: dyad`, `input_size` and `task`.
 * The module is lowered in eval mode (BatchNorm running statistics, no dropout); its
 * training flags are restored afterwards.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as nn from '../../nn/index.js';
import { writeFileAtomic } from '../../torch/io.js';
import { packageRoot } from '../../torch/native.js';
import { Classifier } from '../../models/classifier.js';
import { TorchvisionResNet } from '../../models/torchvision.js';
import { ExportError, OnnxGraph, type Dim, type Val } from './graph.js';
import { lower, l2normalize } from './lower.js';
import { encodeModel, ONNX_DTYPE, type OnnxDType } from './proto.js';

export const ONNX_OPSET = 17;
const IR_VERSION = 8;

export type MetadataValue = string | number | boolean | readonly (string | number)[];

export interface ExportOnnxOptions {
  /** The traced input shape [N, C, H, W] (N is only the example batch when `dynamicBatch`). */
  inputShape: number[];
  /** ONNX opset: 17 (the default and the only one written). */
  opset?: number;
  /** The batch axis is symbolic (`batch`), so any batch size runs (default true). */
  dynamicBatch?: boolean;
  /** float16 weights and compute (true = 'compute'), or float16 weights only ('weights'); default false. */
  half?: boolean | 'weights' | 'compute';
  /** Preprocessing and labels: mean, std, image_size, class names, ... (→ metadata_props). */
  metadata?: Record<string, MetadataValue>;
  /** A classifier's softmax (default true: the output is probabilities). */
  softmax?: boolean;
  /** L2-normalize a backbone's features (default false, as `embed`). */
  normalize?: boolean;
  /** Writes the model there too (atomically). */
  file?: string;
}

/** What one graph takes and gives (the CLIP exporter builds its own graphs with these too). */
export interface GraphSpec {
  name: string;
  inputs: { val: Val; dtype: OnnxDType }[];
  outputs: { val: Val; dtype: OnnxDType }[];
  metadata: Record<string, MetadataValue>;
  opset?: number;
}

function producerVersion(): string {
  try {
    return String((JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }).version ?? '');
  } catch {
    return '';
  }
}

const valueInfo = (v: Val, dtype: OnnxDType): Record<string, unknown> => ({
  name: v.name,
  type: { tensor_type: { elem_type: ONNX_DTYPE[dtype], shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
});

export function checkOpset(opset: number | undefined): number {
  const o = opset ?? ONNX_OPSET;
  if (o !== ONNX_OPSET) throw new ExportError(`ONNX export: opset ${o} is not supported; dyad writes opset ${ONNX_OPSET} (LayerNormalization needs ≥ 17; Reduce* change form at 18). Pass opset: 17`);
  return o;
}

/** Serializes a built graph as a ModelProto. */
export function encodeGraph(g: OnnxGraph, spec: GraphSpec): Uint8Array {
  const meta = Object.entries({ producer: 'dyad', ...spec.metadata }).map(([key, v]) => ({ key, value: typeof v === 'string' ? v : JSON.stringify(v) }));
  return encodeModel({
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: checkOpset(spec.opset) }],
    producer_name: 'dyad',
    producer_version: producerVersion(),
    graph: {
      name: spec.name,
      node: g.nodes,
      initializer: g.initializers,
      input: spec.inputs.map((i) => valueInfo(i.val, i.dtype)),
      output: spec.outputs.map((o) => valueInfo(o.val, o.dtype)),
    },
    metadata_props: meta,
  });
}

/** Runs `fn` with `m` (and every submodule) in eval mode, restoring each one's flag after. */
export function inEval<T>(m: nn.Module, fn: () => T): T {
  const modes = m.modules().map((x) => [x, x.training] as const);
  m.eval();
  try {
    return fn();
  } finally {
    for (const [x, t] of modes) x.training = t;
  }
}

/** Exports an image model (see the module comment); returns the ONNX bytes. */
export function exportOnnx(module: nn.Module, o: ExportOnnxOptions): Uint8Array {
  const opset = checkOpset(o.opset);
  const shape = o.inputShape;
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new ExportError(`ONNX export: inputShape must be [N, C, H, W] with positive integers, got ${JSON.stringify(shape)}`);
  }
  const g = new OnnxGraph({ half: o.half ?? false });
  const batch: Dim = (o.dynamicBatch ?? true) ? 'batch' : shape[0]!;
  const input: Val = { name: g.fresh('images'), shape: [batch, ...shape.slice(1)] };
  const isClassifier = module instanceof Classifier || module instanceof TorchvisionResNet;
  let y = inEval(module, () => lower(g, module, g.fromFloat32(input)));
  let outName = 'features';
  if (isClassifier) {
    outName = o.softmax === false ? 'logits' : 'probs';
    if (o.softmax !== false) y = g.op('Softmax', [y], { axis: -1 }, y.shape);
  } else if (o.normalize) y = l2normalize(g, y);
  // the output, as float32, under a stable name
  const out = g.op('Identity', [g.toFloat32(y)], {}, y.shape);
  g.nodes[g.nodes.length - 1]!.output = [outName];
  const bytes = encodeGraph(g, {
    name: module.constructor.name,
    opset,
    inputs: [{ val: input, dtype: 'float32' }],
    outputs: [{ val: { ...out, name: outName }, dtype: 'float32' }],
    metadata: { task: isClassifier ? 'classify' : 'embed', input_size: shape.slice(1), half: g.half, ...o.metadata },
  });
  if (o.file) writeFileAtomic(o.file, bytes);
  return bytes;
}
