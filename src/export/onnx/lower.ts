/**
 * How each module type describes itself in ONNX (opset 17): a table from module class to a
 * lowering `(g, module, x, path) → y` that adds the nodes of the module's eval-mode `forward`.
 *
 * Why a table of lowerings rather than recording ops during a traced forward: dyad's forwards
 * are written for speed and memory (fused q/k/v GEMMs, `forwardRows` computing only the class
 * token, in-place `relu_`, scopes that dispose intermediates), and PyTorch-like op recording
 * would have to intercept every tensor method and tell data from shape arithmetic. A lowering
 * per module is small, names every weight by its state-dict name, and fails loudly: a module
 * class with no entry (matched exactly, so a subclass that overrides `forward` is never
 * exported with its parent's graph) is an `ExportError` naming it and where it sits.
 */
import * as nn from '../../nn/index.js';
import type { Tensor } from '../../torch/index.js';
import { ResNet, BasicBlock, Bottleneck } from '../../models/resnet.js';
import { VisionTransformer, ViTEmbeddings } from '../../models/vit.js';
import { TransformerEncoder, TransformerEncoderLayer, SelfAttention, TransformerMLP, type Activation } from '../../models/transformer.js';
import { Classifier } from '../../models/classifier.js';
import { ProjectionHead, SimCLRProjectionHead, MoCoProjectionHead } from '../../models/heads.js';
import { TorchvisionResNet } from '../../models/torchvision.js';
import { ExportError, OnnxGraph, staticDim, type Dim, type Val } from './graph.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Lowering<M extends nn.Module = any> = (g: OnnxGraph, m: M, x: Val, path: string, extra?: { mask?: Val | null }) => Val;

const table = new Map<Function, Lowering>();

/** Registers (or replaces) the lowering of a module class: how a new layer becomes exportable. */
export function registerLowering<M extends nn.Module>(cls: abstract new (...a: never[]) => M, fn: Lowering<M>): void {
  table.set(cls, fn);
}

const join = (path: string, name: string): string => (path === '' ? name : `${path}.${name}`);

/** Lowers `m` applied to `x`; `path` is its state-dict prefix. */
export function lower(g: OnnxGraph, m: nn.Module, x: Val, path = '', extra?: { mask?: Val | null }): Val {
  const fn = table.get(m.constructor);
  if (!fn) {
    throw new ExportError(`ONNX export: no lowering for module ${m.constructor.name}${path ? ` (at '${path}')` : ''}. ` +
      'Export supports ResNet, ViT, Classifier, CLIP towers and the nn layers they use; register one with registerLowering(' + m.constructor.name + ', fn)');
  }
  return fn(g, m, x, path, extra);
}

// ---- shape helpers -------------------------------------------------------------------------------

const outSize = (n: number, k: number, s: number, pBegin: number, pEnd: number, d: number, ceil: boolean): number => {
  const v = (n + pBegin + pEnd - d * (k - 1) - 1) / s;
  let o = (ceil ? Math.ceil(v) : Math.floor(v)) + 1;
  if (ceil && (o - 1) * s >= n + pBegin) o -= 1; // PyTorch: the last window must start inside the input or left padding
  return o;
};
const pair = (v: number | [number, number]): [number, number] => (Array.isArray(v) ? v : [v, v]);

// ---- activations and elementwise ---------------------------------------------------------------

export const relu = (g: OnnxGraph, x: Val): Val => g.op('Relu', [x], {}, x.shape);
export const add = (g: OnnxGraph, a: Val, b: Val): Val => g.op('Add', [a, b], {}, a.shape.length >= b.shape.length ? a.shape : b.shape);
export const mul = (g: OnnxGraph, a: Val, b: Val): Val => g.op('Mul', [a, b], {}, a.shape.length >= b.shape.length ? a.shape : b.shape);
const scalar = (g: OnnxGraph, v: number): Val => g.constF([v], [], 'scalar');

/** GELU and its variants (opset 17 has no Gelu op: written with Erf / Tanh / Sigmoid). */
export function activation(g: OnnxGraph, x: Val, act: Activation): Val {
  switch (act) {
    case 'relu': return relu(g, x);
    case 'gelu': { // 0.5·x·(1 + erf(x/√2))
      const e = g.op('Erf', [g.op('Div', [x, scalar(g, Math.SQRT2)], {}, x.shape)], {}, x.shape);
      return mul(g, mul(g, x, scalar(g, 0.5)), add(g, e, scalar(g, 1)));
    }
    case 'quick_gelu': return mul(g, x, g.op('Sigmoid', [mul(g, x, scalar(g, 1.702))], {}, x.shape));
    case 'gelu_new': { // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
      const x3 = g.op('Pow', [x, scalar(g, 3)], {}, x.shape);
      const inner = mul(g, add(g, x, mul(g, x3, scalar(g, 0.044715))), scalar(g, Math.sqrt(2 / Math.PI)));
      return mul(g, mul(g, x, scalar(g, 0.5)), add(g, g.op('Tanh', [inner], {}, x.shape), scalar(g, 1)));
    }
    default: throw new ExportError(`ONNX export: no lowering for activation '${String(act)}'`);
  }
}

/** x / max(‖x‖₂, eps) along the last axis (F.normalize). */
export function l2normalize(g: OnnxGraph, x: Val, eps = 1e-12): Val {
  const n = g.op('ReduceL2', [x], { axes: [-1], keepdims: 1 }, [...x.shape.slice(0, -1), 1]);
  return g.op('Div', [x, g.op('Max', [n, scalar(g, eps)], {}, n.shape)], {}, x.shape);
}

/** Adaptive average pooling of [N, C, H, W] to [N, C, oh, ow] (PyTorch's bins: ⌊i·H/oh⌋ .. ⌈(i+1)·H/oh⌉). */
export function adaptiveAvgPool(g: OnnxGraph, x: Val, oh: number, ow: number): Val {
  const h = staticDim(x, 2, 'adaptive average pooling'), w = staticDim(x, 3, 'adaptive average pooling');
  if (oh === 1 && ow === 1) return g.op('GlobalAveragePool', [x], {}, [x.shape[0]!, x.shape[1]!, 1, 1]);
  if (h % oh === 0 && w % ow === 0) {
    const k = [h / oh, w / ow];
    return g.op('AveragePool', [x], { kernel_shape: k, strides: k }, [x.shape[0]!, x.shape[1]!, oh, ow]);
  }
  // uneven bins: the mean over a rectangle is the mean of row means (each bin a product of ranges)
  const along = (v: Val, axis: 2 | 3, n: number, o: number): Val => {
    const parts: Val[] = [];
    for (let i = 0; i < o; i++) {
      const s = Math.floor((i * n) / o), e = Math.ceil(((i + 1) * n) / o);
      const shape = v.shape.slice();
      shape[axis] = e - s;
      const sl = g.op('Slice', [v, g.constI([s]), g.constI([e]), g.constI([axis])], {}, shape);
      shape[axis] = 1;
      parts.push(g.op('ReduceMean', [sl], { axes: [axis], keepdims: 1 }, shape));
    }
    const shape = v.shape.slice();
    shape[axis] = o;
    return g.op('Concat', parts, { axis }, shape);
  };
  return along(along(x, 2, h, oh), 3, w, ow);
}

/** [N, ...] → [N, prod(rest)]. */
export function flatten(g: OnnxGraph, x: Val): Val {
  const rest = x.shape.slice(1).reduce<number>((a, d) => a * (typeof d === 'number' ? d : NaN), 1);
  return g.op('Flatten', [x], { axis: 1 }, [x.shape[0]!, rest]);
}

// ---- nn layers -----------------------------------------------------------------------------------

registerLowering(nn.Conv2d, (g, m, x, path) => {
  let input = x;
  let pads: number[];
  if (m.padding === 'valid') pads = [0, 0, 0, 0];
  else if (m.padding === 'same') {
    const [th, tw] = [0, 1].map((i) => m.dilation[i]! * (m.kernelSize[i]! - 1)) as [number, number];
    pads = [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
  } else pads = [m.padding[0], m.padding[1], m.padding[0], m.padding[1]];
  if (m.paddingMode !== 'zeros') {
    const [t, l, b, r] = pads as [number, number, number, number];
    const shape = [x.shape[0]!, x.shape[1]!, staticDim(x, 2, 'Conv2d') + t + b, staticDim(x, 3, 'Conv2d') + l + r];
    input = g.op('Pad', [x, g.constI([0, 0, t, l, 0, 0, b, r])], { mode: m.paddingMode === 'reflect' ? 'reflect' : 'edge' }, shape);
    pads = [0, 0, 0, 0];
  }
  const w = g.param(m.weight, join(path, 'weight'));
  const ins = m.bias ? [input, w, g.param(m.bias, join(path, 'bias'))] : [input, w];
  const [kh, kw] = m.kernelSize;
  const ho = outSize(staticDim(input, 2, 'Conv2d'), kh, m.stride[0], pads[0]!, pads[2]!, m.dilation[0], false);
  const wo = outSize(staticDim(input, 3, 'Conv2d'), kw, m.stride[1], pads[1]!, pads[3]!, m.dilation[1], false);
  return g.op('Conv', ins, { kernel_shape: [kh, kw], strides: m.stride, pads, dilations: m.dilation, group: m.groups }, [x.shape[0]!, m.outChannels, ho, wo]);
});

const batchNorm: Lowering<nn.BatchNormBase> = (g, m, x, path) => {
  if (m.running_mean === null || m.running_var === null) {
    throw new ExportError(`ONNX export: ${path || 'BatchNorm'} has no running statistics (trackRunningStats: false), so its eval-mode output depends on the batch; there is no ONNX lowering for that`);
  }
  const c = m.numFeatures;
  const scale = m.weight ? g.param(m.weight, join(path, 'weight')) : g.constF(new Array(c).fill(1), [c]);
  const bias = m.bias ? g.param(m.bias, join(path, 'bias')) : g.constF(new Array(c).fill(0), [c]);
  const ins = [x, scale, bias, g.param(m.running_mean, join(path, 'running_mean')), g.param(m.running_var, join(path, 'running_var'))];
  return g.op('BatchNormalization', ins, { epsilon: { float: m.eps } }, x.shape);
};
registerLowering(nn.BatchNorm2d, batchNorm);
registerLowering(nn.BatchNorm1d, batchNorm);

registerLowering(nn.ReLU, (g, _m, x) => relu(g, x));
registerLowering(nn.GELU, (g, m, x) => activation(g, x, m.approximate === 'tanh' ? 'gelu_new' : 'gelu'));
registerLowering(nn.QuickGELU, (g, _m, x) => activation(g, x, 'quick_gelu'));
registerLowering(nn.Sigmoid, (g, _m, x) => g.op('Sigmoid', [x], {}, x.shape));
registerLowering(nn.Tanh, (g, _m, x) => g.op('Tanh', [x], {}, x.shape));
registerLowering(nn.Softmax, (g, m, x) => g.op('Softmax', [x], { axis: m.dim }, x.shape));
registerLowering(nn.Identity, (_g, _m, x) => x);
registerLowering(nn.Dropout, (_g, _m, x) => x);
registerLowering(nn.Flatten, (g, m, x) => {
  if (m.startDim !== 1 || (m.endDim !== -1 && m.endDim !== x.shape.length - 1)) throw new ExportError(`ONNX export: no lowering for Flatten(${m.startDim}, ${m.endDim}); only Flatten(1, -1)`);
  return flatten(g, x);
});

registerLowering(nn.MaxPool2d, (g, m, x) => {
  const [kh, kw] = pair(m.kernelSize as number), [sh, sw] = pair(m.stride as number), [ph, pw] = pair(m.padding as number), [dh, dw] = pair(m.dilation as number);
  const ceil = m.ceilMode;
  const shape = [x.shape[0]!, x.shape[1]!, outSize(staticDim(x, 2, 'MaxPool2d'), kh, sh, ph, ph, dh, ceil), outSize(staticDim(x, 3, 'MaxPool2d'), kw, sw, pw, pw, dw, ceil)];
  return g.op('MaxPool', [x], { kernel_shape: [kh, kw], strides: [sh, sw], pads: [ph, pw, ph, pw], dilations: [dh, dw], ceil_mode: ceil ? 1 : 0 }, shape);
});

registerLowering(nn.AvgPool2d, (g, m, x) => {
  if (m.divisorOverride !== null) throw new ExportError('ONNX export: no lowering for AvgPool2d with divisorOverride');
  const [kh, kw] = pair(m.kernelSize as number), [sh, sw] = pair(m.stride as number), [ph, pw] = pair(m.padding as number);
  const shape = [x.shape[0]!, x.shape[1]!, outSize(staticDim(x, 2, 'AvgPool2d'), kh, sh, ph, ph, 1, m.ceilMode), outSize(staticDim(x, 3, 'AvgPool2d'), kw, sw, pw, pw, 1, m.ceilMode)];
  return g.op('AveragePool', [x], { kernel_shape: [kh, kw], strides: [sh, sw], pads: [ph, pw, ph, pw], ceil_mode: m.ceilMode ? 1 : 0, count_include_pad: m.countIncludePad ? 1 : 0 }, shape);
});

registerLowering(nn.AdaptiveAvgPool2d, (g, m, x) => {
  const o = m.outputSize;
  const [oh, ow] = typeof o === 'number' ? [o, o] : [o[0] ?? staticDim(x, 2, 'AdaptiveAvgPool2d'), o[1] ?? staticDim(x, 3, 'AdaptiveAvgPool2d')];
  return adaptiveAvgPool(g, x, oh, ow);
});

registerLowering(nn.Linear, (g, m, x, path) => {
  const out = [...x.shape.slice(0, -1), m.outFeatures];
  if (x.shape.length === 2) {
    const ins = [x, g.param(m.weight, join(path, 'weight'))];
    if (m.bias) ins.push(g.param(m.bias, join(path, 'bias')));
    return g.op('Gemm', ins, { transB: 1 }, out);
  }
  const y = g.op('MatMul', [x, g.derived(m.weight, join(path, 'weight_t'), (w: Tensor) => w.t().contiguous())], {}, out);
  return m.bias ? add(g, y, g.param(m.bias, join(path, 'bias'))) : y;
});

registerLowering(nn.LayerNorm, (g, m, x, path) => {
  const shape = m.normalizedShape;
  const size = shape.reduce((a, b) => a * b, 1);
  const scale = m.weight ? g.param(m.weight, join(path, 'weight')) : g.constF(new Array(size).fill(1), shape);
  const ins = [x, scale];
  if (m.bias) ins.push(g.param(m.bias, join(path, 'bias')));
  return g.op('LayerNormalization', ins, { axis: -shape.length, epsilon: { float: m.eps } }, x.shape);
});

registerLowering(nn.Embedding, (g, m, x, path) => g.op('Gather', [g.param(m.weight, join(path, 'weight')), x], { axis: 0 }, [...x.shape, m.embeddingDim]));

registerLowering(nn.Sequential, (g, m, x, path) => {
  let h = x;
  [...m].forEach((c, i) => { h = lower(g, c, h, join(path, String(i))); });
  return h;
});

// ---- ResNet --------------------------------------------------------------------------------------

const cbr = (g: OnnxGraph, conv: nn.Conv2d, bn: nn.BatchNorm2d, x: Val, path: string, c: string, b: string, act = true): Val => {
  const y = lower(g, bn, lower(g, conv, x, join(path, c)), join(path, b));
  return act ? relu(g, y) : y;
};

registerLowering(BasicBlock, (g, m, x, path) => {
  const out = cbr(g, m.conv2, m.bn2, cbr(g, m.conv1, m.bn1, x, path, 'conv1', 'bn1'), path, 'conv2', 'bn2', false);
  const id = m.downsample ? lower(g, m.downsample, x, join(path, 'downsample')) : x;
  return relu(g, add(g, out, id));
});

registerLowering(Bottleneck, (g, m, x, path) => {
  let out = cbr(g, m.conv1, m.bn1, x, path, 'conv1', 'bn1');
  out = cbr(g, m.conv2, m.bn2, out, path, 'conv2', 'bn2');
  out = cbr(g, m.conv3, m.bn3, out, path, 'conv3', 'bn3', false);
  const id = m.downsample ? lower(g, m.downsample, x, join(path, 'downsample')) : x;
  return relu(g, add(g, out, id));
});

/** The maps after layer1..layer4. */
export function resnetStages(g: OnnxGraph, m: ResNet, x: Val, path: string): Val[] {
  let h = cbr(g, m.conv1, m.bn1, x, path, 'conv1', 'bn1');
  if (m.maxpool) h = lower(g, m.maxpool, h, join(path, 'maxpool'));
  return (['layer1', 'layer2', 'layer3', 'layer4'] as const).map((n) => (h = lower(g, m[n], h, join(path, n))));
}

const resnet: Lowering<ResNet> = (g, m, x, path) => {
  const { featureStages, featureGrid } = m.config;
  const pooled = resnetStages(g, m, x, path).slice(4 - featureStages).map((h) => flatten(g, adaptiveAvgPool(g, h, featureGrid, featureGrid)));
  if (pooled.length === 1) return pooled[0]!;
  const width = pooled.reduce((a, v) => a + (v.shape[1] as number), 0);
  return g.op('Concat', pooled, { axis: 1 }, [x.shape[0]!, width]);
};
registerLowering(ResNet, resnet);
registerLowering(TorchvisionResNet, (g, m, x, path) => lower(g, m.fc, resnet(g, m, x, path), join(path, 'fc')));

// ---- transformers --------------------------------------------------------------------------------

registerLowering(SelfAttention, (g, m, x, path, extra) => {
  const [n, l] = x.shape as [Dim, Dim];
  const hd = m.dim / m.heads;
  const split = (v: Val, perm: number[]): Val => {
    const r = g.op('Reshape', [v, g.constI([0, 0, m.heads, hd])], {}, [n, l, m.heads, hd]);
    return g.op('Transpose', [r], { perm }, perm.map((p) => r.shape[p]!));
  };
  const q = split(lower(g, m.q_proj, x, join(path, 'q_proj')), [0, 2, 1, 3]); // [N, h, L, d]
  const kT = split(lower(g, m.k_proj, x, join(path, 'k_proj')), [0, 2, 3, 1]); // [N, h, d, L]
  const v = split(lower(g, m.v_proj, x, join(path, 'v_proj')), [0, 2, 1, 3]);
  let scores = g.op('MatMul', [mul(g, q, scalar(g, 1 / Math.sqrt(hd))), kT], {}, [n, m.heads, l, l]);
  if (extra?.mask) scores = add(g, scores, extra.mask);
  const o = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }, scores.shape), v], {}, [n, m.heads, l, hd]);
  const merged = g.op('Reshape', [g.op('Transpose', [o], { perm: [0, 2, 1, 3] }, [n, l, m.heads, hd]), g.constI([0, 0, m.dim])], {}, [n, l, m.dim]);
  return lower(g, m.out_proj, merged, join(path, 'out_proj'));
});

registerLowering(TransformerMLP, (g, m, x, path) =>
  lower(g, m.fc2, activation(g, lower(g, m.fc1, x, join(path, 'fc1')), m.activation), join(path, 'fc2')));

registerLowering(TransformerEncoderLayer, (g, m, x, path, extra) => {
  const h = add(g, x, lower(g, m.self_attn, lower(g, m.layer_norm1, x, join(path, 'layer_norm1')), join(path, 'self_attn'), extra));
  return add(g, h, lower(g, m.mlp, lower(g, m.layer_norm2, h, join(path, 'layer_norm2')), join(path, 'mlp')));
});

registerLowering(TransformerEncoder, (g, m, x, path, extra) => {
  let h = x;
  [...m.layers].forEach((layer, i) => { h = lower(g, layer, h, join(path, `layers.${i}`), extra); });
  return h;
});

registerLowering(ViTEmbeddings, (g, m, x, path) => {
  const n = x.shape[0]!;
  const conv = lower(g, m.patch_embedding, x, join(path, 'patch_embedding')); // [N, D, h, w]
  const d = conv.shape[1] as number;
  const p = m.numPatches;
  const patches = g.op('Transpose', [g.op('Reshape', [conv, g.constI([0, d, p])], {}, [n, d, p])], { perm: [0, 2, 1] }, [n, p, d]);
  // the class token, expanded to the batch: Expand(cls [1, 1, D], [N, 1, D])
  const cls = g.derived(m.class_embedding, join(path, 'class_embedding'), (t: Tensor) => t.view(1, 1, -1));
  const batch = g.op('Slice', [g.op('Shape', [x], {}, [4], { dtype: 'int64' }), g.constI([0]), g.constI([1])], {}, [1], { dtype: 'int64' });
  const target = g.op('Concat', [batch, g.constI([1, d])], { axis: 0 }, [3], { dtype: 'int64' });
  const tokens = g.op('Concat', [g.op('Expand', [cls, target], {}, [n, 1, d]), patches], { axis: 1 }, [n, p + 1, d]);
  const pos = g.derived(m.position_embedding.weight, join(path, 'position_embedding.weight'), (t: Tensor) => t.unsqueeze(0));
  return add(g, tokens, pos);
});

registerLowering(VisionTransformer, (g, m, x, path) => {
  const h = lower(g, m.encoder, lower(g, m.pre_layrnorm, lower(g, m.embeddings, x, join(path, 'embeddings')), join(path, 'pre_layrnorm')), join(path, 'encoder'));
  const cls = g.op('Gather', [h, g.constI([0], [])], { axis: 1 }, [x.shape[0]!, m.config.dim]);
  return lower(g, m.post_layernorm, cls, join(path, 'post_layernorm'));
});

// ---- heads and classifiers -----------------------------------------------------------------------------------

for (const cls of [ProjectionHead, SimCLRProjectionHead, MoCoProjectionHead]) {
  registerLowering(cls, (g, m, x, path) => lower(g, m.layers, x, join(path, 'layers')));
}
registerLowering(Classifier, (g, m, x, path) => lower(g, m.head, lower(g, m.backbone, x, join(path, 'backbone')), join(path, 'head')));
