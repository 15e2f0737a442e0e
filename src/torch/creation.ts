/** Creating tensors: from JS data, filled, ranges and random, plus functions of several tensors. */
import os from 'node:os';
import { N } from './native.js';
import { Tensor, wrap, handles, val, type Shape, type TensorOrScalar } from './tensor.js';
import { assertDType, dtypeOfTypedArray, itemSize, type DType, type Device, type TypedArray } from './dtype.js';

export interface CreateOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

/** Sets requiresGrad on a tensor already on its device. */
function finish(t: Tensor, o: CreateOptions): Tensor {
  if (o.requiresGrad) t.requiresGrad_(true);
  return t;
}

/**
 * For tensors made on the host: from JS data, and the random factories, which draw on the CPU
 * generator (the one `manualSeed` seeds, so that a seed gives the same values on every device).
 * Moves the result to `o.device`, then finishes it. The other factories create on the device itself.
 */
function fromHost(t: Tensor, o: CreateOptions): Tensor {
  let r = t;
  if (o.device !== undefined && o.device !== 'cpu') {
    r = t.to(o.device);
    t.dispose();
  }
  return finish(r, o);
}

type Nested = number | boolean | bigint | Nested[];

function flattenNested(data: Nested, shape: number[], out: (number | boolean | bigint)[], depth = 0): void {
  if (Array.isArray(data)) {
    if (shape.length <= depth) shape.push(data.length);
    else if (shape[depth] !== data.length) {
      throw new TypeError(`torch.tensor: ragged nested array (expected length ${shape[depth]} at depth ${depth}, got ${data.length})`);
    }
    for (const d of data) flattenNested(d, shape, out, depth + 1);
  } else {
    if (depth !== shape.length) throw new TypeError('torch.tensor: ragged nested array (a number where an array was expected)');
    out.push(data);
  }
}

const typed: Record<DType, ((n: number) => TypedArray) | null> = {
  float32: (n) => new Float32Array(n), float64: (n) => new Float64Array(n), int64: (n) => new BigInt64Array(n),
  int32: (n) => new Int32Array(n), int16: (n) => new Int16Array(n), int8: (n) => new Int8Array(n),
  uint8: (n) => new Uint8Array(n), bool: (n) => new Uint8Array(n), float16: null, bfloat16: null,
};

/**
 * A tensor from numbers, nested arrays or a typed array (copied; `frombuffer` shares memory instead).
 * Numbers default to float32 (JS has no integer literal), booleans to bool, a
 * `BigInt64Array` to int64 and each typed array to its own dtype; `shape` reshapes flat data.
 * @example torch.tensor([[1, 2], [3, 4]]); torch.tensor(new Uint8Array(784), { shape: [1, 28, 28] })
 */
export function tensor(data: Nested | TypedArray | ArrayBuffer, opts: CreateOptions & { shape?: Shape } = {}): Tensor {
  if (data instanceof ArrayBuffer) data = new Uint8Array(data);
  let t: Tensor;
  if (ArrayBuffer.isView(data)) {
    const arr = data as TypedArray;
    const own = dtypeOfTypedArray(arr);
    t = wrap(N.fromBuffer(arr, own, opts.shape ?? [arr.length]));
    if (opts.dtype !== undefined && opts.dtype !== own) {
      const c = t.to(assertDType(opts.dtype));
      t.dispose();
      t = c;
    }
  } else {
    const shape: number[] = [];
    const flat: (number | boolean | bigint)[] = [];
    flattenNested(data, shape, flat);
    const inferred: DType = typeof flat[0] === 'boolean' ? 'bool' : typeof flat[0] === 'bigint' ? 'int64' : 'float32';
    const dtype = assertDType(opts.dtype ?? inferred);
    const make = typed[dtype];
    const storage: DType = make === null ? 'float32' : dtype;
    const arr = (make ?? typed.float32!)(flat.length);
    if (arr instanceof BigInt64Array) flat.forEach((v, i) => (arr[i] = BigInt(v as number)));
    else if (dtype === 'bool') flat.forEach((v, i) => ((arr as Uint8Array)[i] = v ? 1 : 0));
    else flat.forEach((v, i) => ((arr as Float32Array)[i] = Number(v)));
    t = wrap(N.fromBuffer(arr, storage, opts.shape ?? shape));
    if (storage !== dtype) {
      const c = t.to(dtype);
      t.dispose();
      t = c;
    }
  }
  return fromHost(t, opts);
}

/**
 * A tensor that shares memory with `data`, without copying (PyTorch's `torch.frombuffer`):
 * writes through either side show in the other, and the tensor keeps the ArrayBuffer alive.
 * `dtype` defaults to the typed array's own, `shape` to 1-d. Do not transfer or detach the
 * ArrayBuffer (`postMessage(..., [buf])`, `structuredClone` with transfer) while a tensor views it.
 */
export function frombuffer(data: TypedArray | ArrayBuffer, opts: { dtype?: DType; shape?: Shape } = {}): Tensor {
  const own: DType = data instanceof ArrayBuffer ? 'uint8' : dtypeOfTypedArray(data);
  const dtype = assertDType(opts.dtype ?? own);
  const bytes = data.byteLength;
  const shape = opts.shape ?? [bytes / itemSize[dtype]];
  return wrap(N.fromBufferShared(data, dtype, shape));
}

/** A tensor over raw little-endian bytes (copied) with the given dtype and shape. */
export function fromBytes(bytes: Uint8Array | ArrayBuffer, dtype: DType, shape: Shape): Tensor {
  return wrap(N.fromBuffer(bytes, assertDType(dtype), shape));
}

const dt = (o: CreateOptions): DType => assertDType(o.dtype ?? 'float32');
const shapeOf = (s: Shape | number): Shape => (typeof s === 'number' ? [s] : s);

export const zeros = (shape: Shape | number, o: CreateOptions = {}): Tensor => finish(wrap(N.zeros(shapeOf(shape), dt(o), o.device)), o);
export const ones = (shape: Shape | number, o: CreateOptions = {}): Tensor => finish(wrap(N.ones(shapeOf(shape), dt(o), o.device)), o);
export const empty = (shape: Shape | number, o: CreateOptions = {}): Tensor => finish(wrap(N.empty(shapeOf(shape), dt(o), o.device)), o);
export const full = (shape: Shape | number, value: number | boolean, o: CreateOptions = {}): Tensor =>
  finish(wrap(N.full(shapeOf(shape), value, assertDType(o.dtype ?? (typeof value === 'boolean' ? 'bool' : 'float32')), o.device)), o);
/** Uniform on [0, 1). */
export const rand = (shape: Shape | number, o: CreateOptions = {}): Tensor => fromHost(wrap(N.rand(shapeOf(shape), dt(o))), o);
/** Standard normal. */
export const randn = (shape: Shape | number, o: CreateOptions = {}): Tensor => fromHost(wrap(N.randn(shapeOf(shape), dt(o))), o);
/** Integers uniform on [low, high); int64 by default. */
export const randint = (low: number, high: number, shape: Shape | number, o: CreateOptions = {}): Tensor =>
  fromHost(wrap(N.randint(low, high, shapeOf(shape), assertDType(o.dtype ?? 'int64'))), o);
/** A random permutation of 0..n-1 (int64). */
export const randperm = (n: number, o: CreateOptions = {}): Tensor => fromHost(wrap(N.randperm(n, assertDType(o.dtype ?? 'int64'))), o);
export const eye = (n: number, m: number = n, o: CreateOptions = {}): Tensor => finish(wrap(N.eye(n, m, dt(o), o.device)), o);
export const linspace = (start: number, end: number, steps: number, o: CreateOptions = {}): Tensor =>
  finish(wrap(N.linspace(start, end, steps, dt(o), o.device)), o);
/**
 * `arange(end)` or `arange(start, end, step)`. Like PyTorch, the result is int64 when every
 * bound is an integer and float32 otherwise.
 */
export function arange(start: number, end?: number, step = 1, o: CreateOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  const ints = Number.isInteger(start) && Number.isInteger(end) && Number.isInteger(step);
  return finish(wrap(N.arange(start, end, step, assertDType(o.dtype ?? (ints ? 'int64' : 'float32')), o.device)), o);
}
export const zerosLike = (t: Tensor): Tensor => wrap(N.zerosLike(t.handle));
export const onesLike = (t: Tensor): Tensor => wrap(N.onesLike(t.handle));
export const emptyLike = (t: Tensor): Tensor => wrap(N.emptyLike(t.handle));
export const fullLike = (t: Tensor, value: number): Tensor => wrap(N.fullLike(t.handle, value));
export const randLike = (t: Tensor): Tensor => wrap(N.randLike(t.handle));
export const randnLike = (t: Tensor): Tensor => wrap(N.randnLike(t.handle));
export const scalarTensor = (v: number, o: CreateOptions = {}): Tensor => finish(wrap(N.scalarTensor(v, dt(o), o.device)), o);

// ---- functions of several tensors ------------------------------------------------------------
export const cat = (tensors: Tensor[], dim = 0): Tensor => wrap(N.cat(handles(tensors), dim));
export const stack = (tensors: Tensor[], dim = 0): Tensor => wrap(N.stack(handles(tensors), dim));
export const where = (condition: Tensor, input: TensorOrScalar, other: TensorOrScalar): Tensor =>
  wrap(N.where(condition.handle, val(input), val(other)));
/** Einstein summation, as `torch.einsum('ij,jk->ik', a, b)`. */
export const einsum = (equation: string, ...operands: Tensor[]): Tensor => wrap(N.einsum(equation, handles(operands)));
export const matmul = (a: Tensor, b: Tensor): Tensor => a.matmul(b);
export const cdist = (x1: Tensor, x2: Tensor, p = 2): Tensor => wrap(N.cdist(x1.handle, x2.handle, p));
export const addmm = (input: Tensor, m1: Tensor, m2: Tensor, o: { beta?: number; alpha?: number } = {}): Tensor =>
  wrap(N.addmm(input.handle, m1.handle, m2.handle, o.beta ?? 1, o.alpha ?? 1));

// ---- process state ---------------------------------------------------------------------------
/** Seeds libtorch's default generator: the same seed gives the same random tensors. */
export function manualSeed(seed: number): void {
  N.manualSeed(seed);
}
/** The default CPU generator's state (a uint8 tensor), for checkpoints. */
export function getRngState(): Tensor {
  return wrap(N.rngState());
}
export function setRngState(state: Tensor): void {
  N.rngState(state.handle);
}
/** Intra-op threads used by libtorch (defaults to the machine's cores). */
export function setNumThreads(n: number): void {
  N.setNumThreads(n);
}
export function getNumThreads(): number {
  return N.getNumThreads();
}
/**
 * Live native tensor handles in this process (all threads), the bytes of the storages they hold,
 * and `cachedBytes`: freed CPU blocks that dyad's caching allocator keeps for reuse (as
 * `torch.cuda.memory_reserved() - memory_allocated()` counts on a GPU; see `emptyCache`).
 */
export function memory(): { count: number; bytes: number; cachedBytes: number } {
  return N.memory();
}
/**
 * Returns the idle blocks of dyad's CPU caching allocator to the system (PyTorch's
 * `torch.cuda.empty_cache()`, for CPU memory). Tensors in use are not touched. Large freed blocks
 * are otherwise kept, up to DYAD_CPU_CACHE_MB (default min(RAM/8, 4 GiB)), so that the next step
 * reuses them instead of page-faulting in fresh memory; DYAD_CPU_CACHING_ALLOCATOR=0 turns it off.
 */
export function emptyCache(): void {
  N.emptyCache();
}
/** libtorch's version, build configuration and parallel backend. */
export function buildInfo(): { torchVersion: string; config: string; parallel: string; cuda: boolean; mkldnn: boolean } {
  return N.buildInfo();
}
export const cudaIsAvailable = (): boolean => buildInfo().cuda;

if (process.env.OMP_NUM_THREADS === undefined) N.setNumThreads(os.availableParallelism());
