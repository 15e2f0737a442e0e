/**
 * `Tensor`: one JS object per libtorch tensor. Methods chain and keep PyTorch's names in
 * camelCase; what Python passes by keyword goes in one trailing options object.
 * Memory is explicit: see `scope.ts`. Using a disposed tensor throws `DisposedTensorError`.
 */
import { N, type Handle } from './native.js';
import { DisposedTensorError, DyadError } from './errors.js';
import { track, type Owned } from './scope.js';
import type { DType, Device, TypedArray } from './dtype.js';

export type Scalar = number | boolean;
export type TensorOrScalar = Tensor | Scalar;
export type Shape = number[];
export type MemoryFormat = 'contiguous' | 'channelsLast' | 'preserve';

/** Handle of a tensor or a plain number (numbers are wrapped like Python scalars). */
export function val(x: TensorOrScalar | bigint): Handle | Scalar | bigint {
  return x instanceof Tensor ? x.handle : x;
}
/** Handle of an optional tensor (null when absent). */
export function opt(x: Tensor | null | undefined): Handle | null {
  return x == null ? null : x.handle;
}
export function handles(ts: readonly Tensor[]): Handle[] {
  return ts.map((t) => t.handle);
}
/** Wraps a handle (or array of handles) returned by the addon. */
export function wrap(h: Handle): Tensor {
  return new Tensor(h);
}
export function wrapAll(hs: Handle[]): Tensor[] {
  return hs.map((h) => new Tensor(h));
}

export class Tensor implements Owned {
  private _h: Handle | null;
  private _info: [Shape, DType, Device] | null = null;
  _kept = false;

  /** Internal: use the creation functions (`torch.tensor`, `torch.zeros`, ...). */
  constructor(h: Handle) {
    this._h = h;
    track(this);
  }

  /** The native handle; throws if this tensor was disposed. */
  get handle(): Handle {
    if (this._h === null) throw new DisposedTensorError();
    return this._h;
  }

  private get info(): [Shape, DType, Device] {
    if (this._info === null) this._info = N.info(this.handle) as [Shape, DType, Device];
    return this._info;
  }

  // ---- metadata ------------------------------------------------------------------------
  get shape(): Shape { return this.info[0].slice(); }
  get dtype(): DType { return this.info[1]; }
  get device(): Device { return this.info[2]; }
  get ndim(): number { return this.info[0].length; }
  dim(): number { return this.info[0].length; }
  /** Size of dimension `d` (negative counts from the end), or the whole shape. */
  size(): Shape;
  size(d: number): number;
  size(d?: number): Shape | number {
    const s = this.info[0];
    if (d === undefined) return s.slice();
    const i = d < 0 ? d + s.length : d;
    if (i < 0 || i >= s.length) throw new RangeError(`size(${d}): dimension out of range for a ${s.length}-d tensor`);
    return s[i]!;
  }
  numel(): number { return this.info[0].reduce((a, b) => a * b, 1); }
  stride(): number[] { return N.strides(this.handle); }
  isContiguous(memoryFormat: MemoryFormat = 'contiguous'): boolean { return N.isContiguous(this.handle, memoryFormat); }
  get isDisposed(): boolean { return this._h === null; }

  // ---- ownership -------------------------------------------------------------------------
  /** Frees the native tensor now. Safe to call twice. */
  dispose(): void {
    if (this._h !== null) {
      N.free(this._h);
      this._h = null;
    }
  }
  [Symbol.dispose](): void { this.dispose(); }
  /**
   * Internal: points this object at another native tensor and frees the old handle, keeping the
   * JS object's identity (PyTorch's `param.data = t`; used by `nn.Parameter.setData_`).
   */
  _replaceHandle(h: Handle): void {
    const old = this._h;
    this._h = h;
    this._info = null;
    if (old !== null) N.free(old);
  }
  /** Exempts this tensor from every enclosing `torch.scope`; free it with `dispose()` or let GC do it. */
  keep(): this {
    this._kept = true;
    return this;
  }

  // ---- data out ---------------------------------------------------------------------------
  /** The single value of a one-element tensor (a boolean for a bool tensor, as in PyTorch). */
  item(): number {
    return N.item(this.handle) as number;
  }
  private bytes(): ArrayBuffer { return N.toBuffer(this.handle); }
  toFloat32Array(): Float32Array { return new Float32Array((this.dtype === 'float32' ? this : this.to('float32')).bytes()); }
  toFloat64Array(): Float64Array { return new Float64Array((this.dtype === 'float64' ? this : this.to('float64')).bytes()); }
  toInt32Array(): Int32Array { return new Int32Array((this.dtype === 'int32' ? this : this.to('int32')).bytes()); }
  toBigInt64Array(): BigInt64Array { return new BigInt64Array((this.dtype === 'int64' ? this : this.to('int64')).bytes()); }
  toUint8Array(): Uint8Array { return new Uint8Array((this.dtype === 'uint8' || this.dtype === 'bool' ? this : this.to('uint8')).bytes()); }
  /** The raw little-endian bytes, row-major (as safetensors stores them). */
  toBytes(): Uint8Array { return new Uint8Array(this.bytes()); }
  /** Elements in the typed array matching the dtype (float16/bfloat16 come out as Float32Array). */
  toTypedArray(): TypedArray {
    switch (this.dtype) {
      case 'float64': return this.toFloat64Array();
      case 'int64': return this.toBigInt64Array();
      case 'int32': return this.toInt32Array();
      case 'int16': return new Int16Array(this.bytes());
      case 'int8': return new Int8Array(this.bytes());
      case 'uint8': case 'bool': return this.toUint8Array();
      default: return this.toFloat32Array();
    }
  }
  /** Elements as a flat array of numbers (int64 converted with Number()). */
  toArray(): number[] {
    const a = this.toTypedArray();
    return a instanceof BigInt64Array ? Array.from(a, Number) : Array.from(a as ArrayLike<number>);
  }
  /** Nested arrays, like PyTorch's `tolist()`. */
  tolist(): unknown {
    const flat = this.toArray();
    const shape = this.info[0];
    if (shape.length === 0) return flat[0];
    const build = (d: number, off: number): unknown => {
      const n = shape[d]!;
      const step = shape.slice(d + 1).reduce((a, b) => a * b, 1);
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) out.push(d === shape.length - 1 ? flat[off + i] : build(d + 1, off + i * step));
      return out;
    };
    return build(0, 0);
  }
  toString(): string {
    if (this._h === null) return 'tensor(<disposed>)';
    const shape = this.info[0];
    const n = this.numel();
    const extras = `shape=[${shape.join(', ')}], dtype=${this.dtype}${this.device === 'cpu' ? '' : `, device=${this.device}`}`;
    if (n > 1000) return `tensor(<${n} elements>, ${extras})`;
    const isFloat = ['float32', 'float64', 'float16', 'bfloat16'].includes(this.dtype);
    const fmt = (v: unknown): string => (typeof v === 'number' && isFloat ? v.toFixed(4) : String(v));
    const show = (v: unknown, indent: number): string =>
      Array.isArray(v) ? (Array.isArray(v[0]) ? '[' + v.map((x) => show(x, indent + 1)).join(',\n' + ' '.repeat(indent + 8)) + ']' : '[' + v.map(fmt).join(', ') + ']') : fmt(v);
    return `tensor(${show(this.tolist(), 0)}, ${extras})`;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string { return this.toString(); }

  // ---- autograd ---------------------------------------------------------------------------
  get requiresGrad(): boolean { return N.requiresGrad(this.handle); }
  set requiresGrad(v: boolean) { N.requiresGrad(this.handle, v); }
  requiresGrad_(v = true): this { N.requiresGrad(this.handle, v); return this; }
  /** The accumulated gradient (a new Tensor object each time it is read), or null. */
  get grad(): Tensor | null {
    const g = N.grad(this.handle);
    return g === null ? null : new Tensor(g);
  }
  set grad(g: Tensor | null) { N.setGrad(this.handle, g === null ? null : g.handle); }
  get isLeaf(): boolean { return N.isLeaf(this.handle); }
  retainGrad(): this { N.retainGrad(this.handle); return this; }
  /** Computes gradients of this tensor w.r.t. graph leaves. */
  backward(gradient?: Tensor | null, opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    N.backward(this.handle, opt(gradient), opts.retainGraph ?? null, opts.createGraph ?? false);
  }
  detach(): Tensor { return wrap(N.detach(this.handle)); }

  // ---- conversion -------------------------------------------------------------------------
  /**
   * `to('float16')`, `to('cuda')`, or `to({ dtype, device })`. `nonBlocking` (PyTorch's
   * `non_blocking=True`): a copy from pinned host memory (`pinMemory()`) to CUDA is queued on the
   * current stream and returns at once.
   */
  to(target: DType | Device | { dtype?: DType; device?: Device }, opts: { nonBlocking?: boolean } = {}): Tensor {
    const toDevice = (h: Handle, d: Device): Handle => (opts.nonBlocking ? N.toDeviceNonBlocking(h, d, true) : N.toDevice(h, d));
    if (typeof target === 'string') {
      const isDtype = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'].includes(target);
      return wrap(isDtype ? N.toDtype(this.handle, target as DType) : toDevice(this.handle, target));
    }
    let t: Tensor = this;
    if (target.device !== undefined) t = wrap(toDevice(t.handle, target.device));
    if (target.dtype !== undefined) t = wrap(N.toDtype(t.handle, target.dtype));
    return t === this ? this.alias() : t;
  }
  float(): Tensor { return this.to('float32'); }
  double(): Tensor { return this.to('float64'); }
  half(): Tensor { return this.to('float16'); }
  bfloat16(): Tensor { return this.to('bfloat16'); }
  long(): Tensor { return this.to('int64'); }
  int(): Tensor { return this.to('int32'); }
  byte(): Tensor { return this.to('uint8'); }
  bool(): Tensor { return this.to('bool'); }
  cpu(): Tensor { return this.to('cpu'); }
  /** A copy in page-locked (pinned) host memory, for `to('cuda', { nonBlocking: true })`; needs a CUDA libtorch (PyTorch's `pin_memory()`). */
  pinMemory(): Tensor {
    if (!N.cudaIsAvailable()) throw new DyadError('DIST_UNAVAILABLE', 'pinMemory: pinned host memory needs CUDA: this libtorch has no CUDA or sees no GPU (cuda.isAvailable() is false)');
    return wrap(N.pinMemory(this.handle));
  }
  /** True when the tensor lives in pinned host memory (always false in a CPU-only libtorch). */
  isPinned(): boolean { return N.isPinned(this.handle); }
  cuda(index = 0): Tensor { return this.to(`cuda:${index}`); }
  contiguous(memoryFormat: MemoryFormat = 'contiguous'): Tensor { return wrap(N.contiguous(this.handle, memoryFormat)); }
  clone(opts: { memoryFormat?: MemoryFormat } = {}): Tensor { return wrap(N.clone(this.handle, opts.memoryFormat ?? null)); }
  /** A new handle on the same tensor (shares data and autograd history). */
  alias(): Tensor { return wrap(N.view(this.handle, this.info[0])); }

  // ---- elementwise -------------------------------------------------------------------------
  add(other: TensorOrScalar, opts: { alpha?: number } = {}): Tensor { return wrap(N.add(this.handle, val(other), opts.alpha ?? 1)); }
  sub(other: TensorOrScalar, opts: { alpha?: number } = {}): Tensor { return wrap(N.sub(this.handle, val(other), opts.alpha ?? 1)); }
  mul(other: TensorOrScalar): Tensor { return wrap(N.mul(this.handle, val(other))); }
  div(other: TensorOrScalar, opts: { roundingMode?: 'trunc' | 'floor' } = {}): Tensor { return wrap(N.div(this.handle, val(other), opts.roundingMode ?? null)); }
  pow(exponent: TensorOrScalar): Tensor { return wrap(N.pow(this.handle, val(exponent))); }
  remainder(other: TensorOrScalar): Tensor { return wrap(N.remainder(this.handle, val(other))); }
  fmod(other: TensorOrScalar): Tensor { return wrap(N.fmod(this.handle, val(other))); }
  maximum(other: TensorOrScalar): Tensor { return wrap(N.maximum(this.handle, val(other))); }
  minimum(other: TensorOrScalar): Tensor { return wrap(N.minimum(this.handle, val(other))); }
  atan2(other: TensorOrScalar): Tensor { return wrap(N.atan2(this.handle, val(other))); }
  eq(other: TensorOrScalar): Tensor { return wrap(N.eq(this.handle, val(other))); }
  ne(other: TensorOrScalar): Tensor { return wrap(N.ne(this.handle, val(other))); }
  lt(other: TensorOrScalar): Tensor { return wrap(N.lt(this.handle, val(other))); }
  le(other: TensorOrScalar): Tensor { return wrap(N.le(this.handle, val(other))); }
  gt(other: TensorOrScalar): Tensor { return wrap(N.gt(this.handle, val(other))); }
  ge(other: TensorOrScalar): Tensor { return wrap(N.ge(this.handle, val(other))); }
  logicalAnd(other: TensorOrScalar): Tensor { return wrap(N.logicalAnd(this.handle, val(other))); }
  logicalOr(other: TensorOrScalar): Tensor { return wrap(N.logicalOr(this.handle, val(other))); }
  logicalXor(other: TensorOrScalar): Tensor { return wrap(N.logicalXor(this.handle, val(other))); }
  logicalNot(): Tensor { return wrap(N.logicalNot(this.handle)); }
  lerp(end: Tensor, weight: Tensor | number): Tensor { return wrap(N.lerp(this.handle, end.handle, weight instanceof Tensor ? weight.handle : weight)); }
  maskedFill(mask: Tensor, value: Scalar): Tensor { return wrap(N.maskedFill(this.handle, mask.handle, value)); }
  clamp(opts: { min?: number; max?: number }): Tensor { return wrap(N.clamp(this.handle, opts.min ?? null, opts.max ?? null)); }
  clampMin(min: number): Tensor { return this.clamp({ min }); }
  clampMax(max: number): Tensor { return this.clamp({ max }); }
  nanToNum(opts: { nan?: number; posinf?: number; neginf?: number } = {}): Tensor {
    return wrap(N.nanToNum(this.handle, opts.nan ?? 0, opts.posinf ?? null, opts.neginf ?? null));
  }
  allclose(other: Tensor, opts: { rtol?: number; atol?: number; equalNan?: boolean } = {}): boolean {
    return N.allclose(this.handle, other.handle, opts.rtol ?? 1e-5, opts.atol ?? 1e-8, opts.equalNan ?? false);
  }
  equal(other: Tensor): boolean { return N.equal(this.handle, other.handle); }
  neg(): Tensor { return wrap(N.neg(this.handle)); }
  abs(): Tensor { return wrap(N.abs(this.handle)); }
  exp(): Tensor { return wrap(N.exp(this.handle)); }
  log(): Tensor { return wrap(N.log(this.handle)); }
  log2(): Tensor { return wrap(N.log2(this.handle)); }
  log1p(): Tensor { return wrap(N.log1p(this.handle)); }
  expm1(): Tensor { return wrap(N.expm1(this.handle)); }
  sqrt(): Tensor { return wrap(N.sqrt(this.handle)); }
  rsqrt(): Tensor { return wrap(N.rsqrt(this.handle)); }
  square(): Tensor { return wrap(N.square(this.handle)); }
  sin(): Tensor { return wrap(N.sin(this.handle)); }
  cos(): Tensor { return wrap(N.cos(this.handle)); }
  tan(): Tensor { return wrap(N.tan(this.handle)); }
  tanh(): Tensor { return wrap(N.tanh(this.handle)); }
  sigmoid(): Tensor { return wrap(N.sigmoid(this.handle)); }
  relu(): Tensor { return wrap(N.relu(this.handle)); }
  erf(): Tensor { return wrap(N.erf(this.handle)); }
  floor(): Tensor { return wrap(N.floor(this.handle)); }
  ceil(): Tensor { return wrap(N.ceil(this.handle)); }
  round(): Tensor { return wrap(N.round(this.handle)); }
  trunc(): Tensor { return wrap(N.trunc(this.handle)); }
  sign(): Tensor { return wrap(N.sign(this.handle)); }
  reciprocal(): Tensor { return wrap(N.reciprocal(this.handle)); }
  isnan(): Tensor { return wrap(N.isnan(this.handle)); }
  isinf(): Tensor { return wrap(N.isinf(this.handle)); }
  isfinite(): Tensor { return wrap(N.isfinite(this.handle)); }
  softmax(dim: number): Tensor { return wrap(N.softmax(this.handle, dim, null)); }
  logSoftmax(dim: number): Tensor { return wrap(N.logSoftmax(this.handle, dim, null)); }

  // ---- reductions ---------------------------------------------------------------------------
  sum(dim?: number | number[] | null, opts: { keepdim?: boolean; dtype?: DType } = {}): Tensor {
    return wrap(N.sum(this.handle, dim ?? null, opts.keepdim ?? false, opts.dtype ?? null));
  }
  mean(dim?: number | number[] | null, opts: { keepdim?: boolean; dtype?: DType } = {}): Tensor {
    return wrap(N.mean(this.handle, dim ?? null, opts.keepdim ?? false, opts.dtype ?? null));
  }
  prod(opts: { dtype?: DType } = {}): Tensor { return wrap(N.prod(this.handle, opts.dtype ?? null)); }
  /** Variance; `unbiased` (Bessel's correction) defaults to true as in PyTorch. */
  var(dim?: number | number[] | null, opts: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
    return wrap(N.var(this.handle, dim ?? null, opts.unbiased ?? true, opts.keepdim ?? false));
  }
  std(dim?: number | number[] | null, opts: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
    return wrap(N.std(this.handle, dim ?? null, opts.unbiased ?? true, opts.keepdim ?? false));
  }
  /** The maximum of all elements. With a `dim`, use `maxDim` (values and indices). */
  max(): Tensor { return wrap(N.max(this.handle)); }
  min(): Tensor { return wrap(N.min(this.handle)); }
  maxDim(dim: number, opts: { keepdim?: boolean } = {}): { values: Tensor; indices: Tensor } {
    const [v, i] = N.maxDim(this.handle, dim, opts.keepdim ?? false);
    return { values: wrap(v), indices: wrap(i) };
  }
  minDim(dim: number, opts: { keepdim?: boolean } = {}): { values: Tensor; indices: Tensor } {
    const [v, i] = N.minDim(this.handle, dim, opts.keepdim ?? false);
    return { values: wrap(v), indices: wrap(i) };
  }
  amax(dim: number | number[], opts: { keepdim?: boolean } = {}): Tensor { return wrap(N.amax(this.handle, dim, opts.keepdim ?? false)); }
  amin(dim: number | number[], opts: { keepdim?: boolean } = {}): Tensor { return wrap(N.amin(this.handle, dim, opts.keepdim ?? false)); }
  argmax(dim?: number | null, opts: { keepdim?: boolean } = {}): Tensor { return wrap(N.argmax(this.handle, dim ?? null, opts.keepdim ?? false)); }
  argmin(dim?: number | null, opts: { keepdim?: boolean } = {}): Tensor { return wrap(N.argmin(this.handle, dim ?? null, opts.keepdim ?? false)); }
  logsumexp(dim: number | number[], opts: { keepdim?: boolean } = {}): Tensor { return wrap(N.logsumexp(this.handle, dim, opts.keepdim ?? false)); }
  /** p-norm over all elements, or over `dim`. */
  norm(p: number = 2, dim?: number | number[] | null, opts: { keepdim?: boolean } = {}): Tensor {
    return wrap(N.norm(this.handle, p, dim ?? null, opts.keepdim ?? false));
  }
  cumsum(dim: number, opts: { dtype?: DType } = {}): Tensor { return wrap(N.cumsum(this.handle, dim, opts.dtype ?? null)); }
  cumprod(dim: number, opts: { dtype?: DType } = {}): Tensor { return wrap(N.cumprod(this.handle, dim, opts.dtype ?? null)); }
  all(): Tensor { return wrap(N.all(this.handle)); }
  any(): Tensor { return wrap(N.any(this.handle)); }
  countNonzero(dim?: number): Tensor { return wrap(N.countNonzero(this.handle, dim ?? null)); }

  // ---- linear algebra ------------------------------------------------------------------------
  matmul(other: Tensor): Tensor { return wrap(N.matmul(this.handle, other.handle)); }
  mm(other: Tensor): Tensor { return wrap(N.mm(this.handle, other.handle)); }
  bmm(other: Tensor): Tensor { return wrap(N.bmm(this.handle, other.handle)); }
  outer(other: Tensor): Tensor { return wrap(N.outer(this.handle, other.handle)); }
  /** Transpose of a 2-d tensor (`.t()` in PyTorch). */
  t(): Tensor { return this.transpose(0, 1); }
  get T(): Tensor { return this.ndim < 2 ? this.alias() : this.permute([...Array(this.ndim).keys()].reverse()); }

  // ---- shape and indexing ------------------------------------------------------------------------
  view(...shape: number[] | [number[]]): Tensor { return wrap(N.view(this.handle, flatShape(shape))); }
  reshape(...shape: number[] | [number[]]): Tensor { return wrap(N.reshape(this.handle, flatShape(shape))); }
  viewAs(other: Tensor): Tensor { return this.view(other.shape); }
  permute(...dims: number[] | [number[]]): Tensor { return wrap(N.permute(this.handle, flatShape(dims))); }
  transpose(dim0: number, dim1: number): Tensor { return wrap(N.transpose(this.handle, dim0, dim1)); }
  flatten(startDim = 0, endDim = -1): Tensor { return wrap(N.flatten(this.handle, startDim, endDim)); }
  unflatten(dim: number, sizes: number[]): Tensor { return wrap(N.unflatten(this.handle, dim, sizes)); }
  squeeze(dim?: number): Tensor { return wrap(N.squeeze(this.handle, dim ?? null)); }
  unsqueeze(dim: number): Tensor { return wrap(N.unsqueeze(this.handle, dim)); }
  /** Splits into chunks of `splitSize` (a number) or of the given sizes (an array). */
  split(splitSize: number | number[], dim = 0): Tensor[] {
    return wrapAll(Array.isArray(splitSize) ? N.splitWithSizes(this.handle, splitSize, dim) : N.split(this.handle, splitSize, dim));
  }
  chunk(chunks: number, dim = 0): Tensor[] { return wrapAll(N.chunk(this.handle, chunks, dim)); }
  unbind(dim = 0): Tensor[] { return wrapAll(N.unbind(this.handle, dim)); }
  narrow(dim: number, start: number, length: number): Tensor { return wrap(N.narrow(this.handle, dim, start, length)); }
  select(dim: number, index: number): Tensor { return wrap(N.select(this.handle, dim, index)); }
  /** `t[i]` along the first dimension. */
  get(index: number): Tensor { return this.select(0, index); }
  /** Python's `t[..., start:end:step]` along `dim`; null bounds mean the ends. */
  slice(dim: number, start: number | null = null, end: number | null = null, step = 1): Tensor {
    return wrap(N.slice(this.handle, dim, start, end, step));
  }
  indexSelect(dim: number, index: Tensor): Tensor { return wrap(N.indexSelect(this.handle, dim, index.handle)); }
  /** Advanced indexing, `t[i0, i1, ...]` with index tensors (int64 or bool); null keeps a dimension whole. */
  index(indices: (Tensor | null)[]): Tensor { return wrap(N.index(this.handle, indices.map(opt))); }
  indexPut(indices: (Tensor | null)[], values: Tensor, opts: { accumulate?: boolean } = {}): Tensor {
    return wrap(N.indexPut(this.handle, indices.map(opt), values.handle, opts.accumulate ?? false));
  }
  maskedSelect(mask: Tensor): Tensor { return wrap(N.maskedSelect(this.handle, mask.handle)); }
  nonzero(): Tensor { return wrap(N.nonzero(this.handle)); }
  gather(dim: number, index: Tensor): Tensor { return wrap(N.gather(this.handle, dim, index.handle)); }
  scatter(dim: number, index: Tensor, src: Tensor): Tensor { return wrap(N.scatter(this.handle, dim, index.handle, src.handle)); }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor { return wrap(N.scatterAdd(this.handle, dim, index.handle, src.handle)); }
  expand(...shape: number[] | [number[]]): Tensor { return wrap(N.expand(this.handle, flatShape(shape))); }
  expandAs(other: Tensor): Tensor { return this.expand(other.shape); }
  repeat(...repeats: number[] | [number[]]): Tensor { return wrap(N.repeat(this.handle, flatShape(repeats))); }
  repeatInterleave(repeats: number, dim?: number): Tensor { return wrap(N.repeatInterleave(this.handle, repeats, dim ?? null)); }
  flip(dims: number | number[]): Tensor { return wrap(N.flip(this.handle, dims)); }
  roll(shifts: number | number[], dims: number | number[]): Tensor { return wrap(N.roll(this.handle, shifts, dims)); }
  tril(diagonal = 0): Tensor { return wrap(N.tril(this.handle, diagonal)); }
  triu(diagonal = 0): Tensor { return wrap(N.triu(this.handle, diagonal)); }
  diagonal(offset = 0, dim1 = 0, dim2 = 1): Tensor { return wrap(N.diagonal(this.handle, offset, dim1, dim2)); }
  topk(k: number, opts: { dim?: number; largest?: boolean; sorted?: boolean } = {}): { values: Tensor; indices: Tensor } {
    const [v, i] = N.topk(this.handle, k, opts.dim ?? -1, opts.largest ?? true, opts.sorted ?? true);
    return { values: wrap(v), indices: wrap(i) };
  }
  sort(opts: { dim?: number; descending?: boolean; stable?: boolean } = {}): { values: Tensor; indices: Tensor } {
    const [v, i] = N.sort(this.handle, opts.dim ?? -1, opts.descending ?? false, opts.stable ?? false);
    return { values: wrap(v), indices: wrap(i) };
  }
  argsort(opts: { dim?: number; descending?: boolean; stable?: boolean } = {}): Tensor {
    return wrap(N.argsort(this.handle, opts.dim ?? -1, opts.descending ?? false, opts.stable ?? false));
  }

  // ---- in place (return this) -------------------------------------------------------------------
  add_(other: TensorOrScalar, opts: { alpha?: number } = {}): this { N.add_(this.handle, val(other), opts.alpha ?? 1); return this; }
  sub_(other: TensorOrScalar, opts: { alpha?: number } = {}): this { N.sub_(this.handle, val(other), opts.alpha ?? 1); return this; }
  mul_(other: TensorOrScalar): this { N.mul_(this.handle, val(other)); return this; }
  div_(other: TensorOrScalar): this { N.div_(this.handle, val(other)); return this; }
  addcmul_(t1: Tensor, t2: Tensor, opts: { value?: number } = {}): this { N.addcmul_(this.handle, t1.handle, t2.handle, opts.value ?? 1); return this; }
  addcdiv_(t1: Tensor, t2: Tensor, opts: { value?: number } = {}): this { N.addcdiv_(this.handle, t1.handle, t2.handle, opts.value ?? 1); return this; }
  lerp_(end: Tensor, weight: Tensor | number): this { N.lerp_(this.handle, end.handle, weight instanceof Tensor ? weight.handle : weight); return this; }
  copy_(src: Tensor): this { N.copy_(this.handle, src.handle); return this; }
  zero_(): this { N.zero_(this.handle); return this; }
  fill_(value: Scalar): this { N.fill_(this.handle, value); return this; }
  clamp_(opts: { min?: number; max?: number }): this { N.clamp_(this.handle, opts.min ?? null, opts.max ?? null); return this; }
  sqrt_(): this { N.sqrt_(this.handle); return this; }
  neg_(): this { N.neg_(this.handle); return this; }
  exp_(): this { N.exp_(this.handle); return this; }
  relu_(): this { N.relu_(this.handle); return this; }
  uniform_(from = 0, to = 1): this { N.uniform_(this.handle, from, to); return this; }
  normal_(mean = 0, std = 1): this { N.normal_(this.handle, mean, std); return this; }
  bernoulli_(p = 0.5): this { N.bernoulli_(this.handle, p); return this; }
  maskedFill_(mask: Tensor, value: Scalar): this { N.maskedFill_(this.handle, mask.handle, value); return this; }
  indexPut_(indices: (Tensor | null)[], values: Tensor, opts: { accumulate?: boolean } = {}): this {
    N.indexPut_(this.handle, indices.map(opt), values.handle, opts.accumulate ?? false);
    return this;
  }
  indexCopy_(dim: number, index: Tensor, src: Tensor): this { N.indexCopy_(this.handle, dim, index.handle, src.handle); return this; }
  indexAdd_(dim: number, index: Tensor, src: Tensor): this { N.indexAdd_(this.handle, dim, index.handle, src.handle); return this; }
  scatter_(dim: number, index: Tensor, src: Tensor): this { N.scatter_(this.handle, dim, index.handle, src.handle); return this; }
  scatterAdd_(dim: number, index: Tensor, src: Tensor): this { N.scatterAdd_(this.handle, dim, index.handle, src.handle); return this; }
}

/** Accepts `f(2, 3)` and `f([2, 3])`. */
function flatShape(args: number[] | [number[]]): number[] {
  return args.length === 1 && Array.isArray(args[0]) ? (args[0] as number[]) : (args as number[]);
}
