/**
 * The typed view of the libtorch addon's exports (`native/build/Release/dyad.node`): the op
 * table of `native/src/ops.cc` and the core functions of `native/src/addon.cc`. As tch-rs and
 * TorchSharp type both sides of their boundary, every addon export has its argument and return
 * types here, so a wrong argument at any of the ~230 call sites in src/torch is a compile error,
 * and test/native_ops.test.ts checks the names against the loaded addon's `opNames`.
 *
 * The op table is one `const` object, `NATIVE_OP_SIGNATURES`, whose entries copy ops.cc's
 * argument readers in position order (`'t, ts, s -> T'` for `add(a.t(0), a.ts(1), a.s(2))`);
 * its type generates `NativeOpTable` and its keys are `NATIVE_OP_NAMES`, so the two cannot
 * drift. Readers (handle.h), with their JS types:
 *
 * | reader | JS type                        | reader | JS type                             |
 * | ------ | ------------------------------ | ------ | ----------------------------------- |
 * | `t`    | Handle                         | `ot`   | Handle or null                      |
 * | `ts`   | Handle, number, boolean, bigint| `tn`   | Handle or number (lerp's weight)    |
 * | `s`    | number, boolean, bigint        | `os`   | the same or null                    |
 * | `d`    | number                         | `od`   | number or null                      |
 * | `i64`  | integer number or bigint       | `oi64` | the same or null                    |
 * | `b`    | boolean                        | `str`  | string (`ostr`: or null)            |
 * | `il`   | integer array or one integer   | `oil`  | the same or null                    |
 * | `tl`   | Handle[]                       | `otl`  | (Handle or null)[] (index lists)    |
 * | `dt`   | DType (`odt`: or null)         | `odev` | device string or null (`opts(i+1)`) |
 * | `omf`  | memory format or null          |        |                                     |
 *
 * Readers starting with `o` accept null; when they end the list they may be left out (the addon
 * checks `a.has(i)`). Results: `T` a new tensor handle, `T2` two of them (values, indices),
 * `T[]` a list, `bool`, or `void` for in-place ops. Handle checks, shape rules and every other
 * runtime error stay in the addon, which raises `TorchError` with libtorch's message.
 */
import type { DType, Device } from './dtype.js';
import type { MemoryFormat } from './tensor.js';

/** An opaque tensor handle (a type-tagged object that wraps the native tensor; see native/src/handle.h). */
export type Handle = { readonly __handle: unique symbol };

/** The JS type of each argument reader of handle.h (`Args::t`, `Args::ts`, ...). */
export interface NativeArgTypes {
  t: Handle;
  ot: Handle | null;
  ts: Handle | number | boolean | bigint;
  tn: Handle | number;
  s: number | boolean | bigint;
  os: number | boolean | bigint | null;
  d: number;
  od: number | null;
  i64: number | bigint;
  oi64: number | bigint | null;
  b: boolean;
  str: string;
  ostr: string | null;
  il: readonly number[] | number;
  oil: readonly number[] | number | null;
  tl: readonly Handle[];
  otl: readonly (Handle | null)[];
  dt: DType;
  odt: DType | null;
  odev: Device | null;
  omf: MemoryFormat | null;
}
/** Every reader name, at run time (the test checks each signature uses only these). */
export const NATIVE_ARG_KINDS = [
  't', 'ot', 'ts', 'tn', 's', 'os', 'd', 'od', 'i64', 'oi64', 'b', 'str', 'ostr', 'il', 'oil', 'tl', 'otl', 'dt', 'odt', 'odev', 'omf',
] as const;

/** What an op returns. */
export interface NativeReturnTypes {
  T: Handle;
  T2: [Handle, Handle];
  'T[]': Handle[];
  bool: boolean;
  void: void;
}
export const NATIVE_RETURN_KINDS = ['T', 'T2', 'T[]', 'bool', 'void'] as const;

/** One op's signature: its readers in position order, then its result. */
export type OpSignature = `${string} -> ${keyof NativeReturnTypes}`;

/** The op table of native/src/ops.cc, one entry per `OP`/`OPV` line, in its order. */
export const NATIVE_OP_SIGNATURES = {
  // ---- creation ------------------------------------------------------------------------------
  zeros: 'il, odt, odev -> T',
  ones: 'il, odt, odev -> T',
  empty: 'il, odt, odev -> T',
  full: 'il, s, odt, odev -> T',
  arange: 's, s, s, odt, odev -> T',
  linspace: 's, s, i64, odt, odev -> T',
  eye: 'i64, i64, odt, odev -> T',
  rand: 'il, odt, odev -> T',
  randn: 'il, odt, odev -> T',
  randint: 'i64, i64, il, odt, odev -> T',
  randperm: 'i64, odt, odev -> T',
  scalarTensor: 's, odt, odev -> T',
  zerosLike: 't -> T',
  onesLike: 't -> T',
  emptyLike: 't -> T',
  fullLike: 't, s -> T',
  randLike: 't -> T',
  randnLike: 't -> T',
  // ---- conversion and copies -----------------------------------------------------------------
  toDtype: 't, dt -> T',
  toDevice: 't, str -> T',
  toDeviceNonBlocking: 't, str, b -> T',
  pinMemory: 't -> T',
  isPinned: 't -> bool',
  autocastSet: 'str, b, dt -> void',
  autocastIsEnabled: 'str -> bool',
  autocastNest: 'b -> void',
  contiguous: 't, omf -> T',
  clone: 't, omf -> T',
  detach: 't -> T',
  // ---- elementwise binary (`ts`: a tensor or a number) ---------------------------------------
  add: 't, ts, s -> T',
  sub: 't, ts, s -> T',
  mul: 't, ts -> T',
  div: 't, ts, ostr -> T',
  pow: 't, ts -> T',
  remainder: 't, ts -> T',
  fmod: 't, ts -> T',
  maximum: 't, ts -> T',
  minimum: 't, ts -> T',
  atan2: 't, ts -> T',
  eq: 't, ts -> T',
  ne: 't, ts -> T',
  lt: 't, ts -> T',
  le: 't, ts -> T',
  gt: 't, ts -> T',
  ge: 't, ts -> T',
  logicalAnd: 't, ts -> T',
  logicalOr: 't, ts -> T',
  logicalXor: 't, ts -> T',
  lerp: 't, t, tn -> T',
  where: 't, ts, ts -> T',
  maskedFill: 't, t, s -> T',
  clamp: 't, os, os -> T',
  nanToNum: 't, od, od, od -> T',
  allclose: 't, t, d, d, b -> bool',
  equal: 't, t -> bool',
  // ---- elementwise unary ---------------------------------------------------------------------
  neg: 't -> T',
  abs: 't -> T',
  exp: 't -> T',
  log: 't -> T',
  log2: 't -> T',
  log1p: 't -> T',
  expm1: 't -> T',
  sqrt: 't -> T',
  rsqrt: 't -> T',
  square: 't -> T',
  sin: 't -> T',
  cos: 't -> T',
  tan: 't -> T',
  tanh: 't -> T',
  sigmoid: 't -> T',
  erf: 't -> T',
  floor: 't -> T',
  ceil: 't -> T',
  round: 't -> T',
  trunc: 't -> T',
  sign: 't -> T',
  reciprocal: 't -> T',
  isnan: 't -> T',
  isinf: 't -> T',
  isfinite: 't -> T',
  logicalNot: 't -> T',
  // ---- reductions ----------------------------------------------------------------------------
  sum: 't, oil, b, odt -> T',
  mean: 't, oil, b, odt -> T',
  prod: 't, odt -> T',
  var: 't, oil, b, b -> T',
  std: 't, oil, b, b -> T',
  max: 't -> T',
  min: 't -> T',
  maxDim: 't, i64, b -> T2',
  minDim: 't, i64, b -> T2',
  amax: 't, il, b -> T',
  amin: 't, il, b -> T',
  argmax: 't, oi64, b -> T',
  argmin: 't, oi64, b -> T',
  logsumexp: 't, il, b -> T',
  norm: 't, s, oil, b -> T',
  cumsum: 't, i64, odt -> T',
  cumprod: 't, i64, odt -> T',
  all: 't -> T',
  any: 't -> T',
  countNonzero: 't, oi64 -> T',
  // ---- linear algebra ------------------------------------------------------------------------
  matmul: 't, t -> T',
  mm: 't, t -> T',
  bmm: 't, t -> T',
  einsum: 'str, tl -> T',
  outer: 't, t -> T',
  addmm: 't, t, t, s, s -> T',
  baddbmm: 't, t, t, s, s -> T',
  cdist: 't, t, d -> T',
  // ---- shape and indexing --------------------------------------------------------------------
  view: 't, il -> T',
  reshape: 't, il -> T',
  permute: 't, il -> T',
  transpose: 't, i64, i64 -> T',
  flatten: 't, i64, i64 -> T',
  unflatten: 't, i64, il -> T',
  squeeze: 't, oi64 -> T',
  unsqueeze: 't, i64 -> T',
  cat: 'tl, i64 -> T',
  stack: 'tl, i64 -> T',
  split: 't, i64, i64 -> T[]',
  splitWithSizes: 't, il, i64 -> T[]',
  chunk: 't, i64, i64 -> T[]',
  unbind: 't, i64 -> T[]',
  narrow: 't, i64, i64, i64 -> T',
  select: 't, i64, i64 -> T',
  slice: 't, i64, oi64, oi64, i64 -> T',
  indexSelect: 't, i64, t -> T',
  index: 't, otl -> T',
  indexPut: 't, otl, t, b -> T',
  maskedSelect: 't, t -> T',
  nonzero: 't -> T',
  gather: 't, i64, t -> T',
  scatter: 't, i64, t, t -> T',
  scatterAdd: 't, i64, t, t -> T',
  expand: 't, il -> T',
  repeat: 't, il -> T',
  repeatInterleave: 't, i64, oi64 -> T',
  flip: 't, il -> T',
  roll: 't, il, il -> T',
  tril: 't, i64 -> T',
  triu: 't, i64 -> T',
  diagonal: 't, i64, i64, i64 -> T',
  topk: 't, i64, i64, b, b -> T2',
  sort: 't, i64, b, b -> T2',
  argsort: 't, i64, b, b -> T',
  // ---- nn functional -------------------------------------------------------------------------
  conv1d: 't, t, ot, il, il, il, i64 -> T',
  conv2d: 't, t, ot, il, il, il, i64 -> T',
  conv2dPad: 't, t, ot, il, str, il, i64 -> T',
  convTranspose2d: 't, t, ot, il, il, il, i64, il -> T',
  linear: 't, t, ot -> T',
  batchNorm: 't, ot, ot, ot, ot, b, d, d -> T',
  layerNorm: 't, il, ot, ot, d -> T',
  groupNorm: 't, i64, ot, ot, d -> T',
  relu: 't -> T',
  gelu: 't, str -> T',
  silu: 't -> T',
  mish: 't -> T',
  leakyRelu: 't, s -> T',
  elu: 't, s -> T',
  softplus: 't, s, s -> T',
  hardtanh: 't, s, s -> T',
  softmax: 't, i64, odt -> T',
  logSoftmax: 't, i64, odt -> T',
  crossEntropy: 't, t, ot, i64, i64, d -> T',
  nllLoss: 't, t, ot, i64, i64 -> T',
  mseLoss: 't, t, i64 -> T',
  l1Loss: 't, t, i64 -> T',
  smoothL1Loss: 't, t, i64, d -> T',
  binaryCrossEntropyWithLogits: 't, t, ot, ot, i64 -> T',
  klDiv: 't, t, i64, b -> T',
  dropout: 't, d, b -> T',
  maxPool2d: 't, il, il, il, il, b -> T',
  avgPool2d: 't, il, il, il, b, b, oi64 -> T',
  adaptiveAvgPool1d: 't, il -> T',
  adaptiveAvgPool2d: 't, il -> T',
  adaptiveMaxPool2d: 't, il -> T2',
  upsampleNearest2d: 't, il, od, od -> T',
  upsampleBilinear2d: 't, il, b, od, od -> T',
  upsampleBicubic2d: 't, il, b, od, od -> T',
  upsampleBilinear2dAA: 't, il, b, od, od -> T',
  upsampleBicubic2dAA: 't, il, b, od, od -> T',
  gridSampler: 't, t, i64, i64, b -> T',
  affineGrid: 't, il, b -> T',
  embedding: 't, t, i64, b, b -> T',
  cosineSimilarity: 't, t, i64, d -> T',
  oneHot: 't, i64 -> T',
  constantPad: 't, il, s -> T',
  reflectionPad1d: 't, il -> T',
  reflectionPad2d: 't, il -> T',
  replicationPad1d: 't, il -> T',
  replicationPad2d: 't, il -> T',
  pixelShuffle: 't, i64 -> T',
  // ---- in place: return nothing (TypeScript returns `this`) ----------------------------------
  add_: 't, ts, s -> void',
  sub_: 't, ts, s -> void',
  mul_: 't, ts -> void',
  div_: 't, ts -> void',
  addcmul_: 't, t, t, s -> void',
  addcdiv_: 't, t, t, s -> void',
  lerp_: 't, t, tn -> void',
  copy_: 't, t -> void',
  zero_: 't -> void',
  fill_: 't, s -> void',
  clamp_: 't, os, os -> void',
  sqrt_: 't -> void',
  neg_: 't -> void',
  exp_: 't -> void',
  relu_: 't -> void',
  uniform_: 't, d, d -> void',
  normal_: 't, d, d -> void',
  bernoulli_: 't, d -> void',
  maskedFill_: 't, t, s -> void',
  indexPut_: 't, otl, t, b -> void',
  indexCopy_: 't, i64, t, t -> void',
  indexAdd_: 't, i64, t, t -> void',
  scatter_: 't, i64, t, t -> void',
  scatterAdd_: 't, i64, t, t -> void',
} as const satisfies Record<string, OpSignature>;

type Nullable = Extract<keyof NativeArgTypes, `o${string}`>;
type SplitArgs<S extends string> = S extends `${infer H}, ${infer R}` ? [H, ...SplitArgs<R>] : [S];
type AllNullable<A extends string[]> = A extends [infer H, ...infer R extends string[]] ? (H extends Nullable ? AllNullable<R> : false) : true;
/** Parameters from reader names; a run of nullable readers at the end becomes optional. */
type Params<A extends string[]> = A extends [infer H, ...infer R extends string[]]
  ? H extends keyof NativeArgTypes
    ? AllNullable<A> extends true ? [NativeArgTypes[H]?, ...Params<R>] : [NativeArgTypes[H], ...Params<R>]
    : never
  : [];
/** The function type of one signature string. */
export type OpFunction<S extends string> = S extends `${infer A} -> ${infer R extends keyof NativeReturnTypes}`
  ? (...args: Params<SplitArgs<A>>) => NativeReturnTypes[R]
  : never;

/** The addon's op exports, typed from `NATIVE_OP_SIGNATURES`. */
export type NativeOpTable = { readonly [K in keyof typeof NATIVE_OP_SIGNATURES]: OpFunction<(typeof NATIVE_OP_SIGNATURES)[K]> };
export type NativeOpName = keyof typeof NATIVE_OP_SIGNATURES;
/** The op names, in ops.cc's order: what the addon's `opNames` must equal. */
export const NATIVE_OP_NAMES = Object.keys(NATIVE_OP_SIGNATURES) as NativeOpName[];

/** The core exports of native/src/addon.cc (`kCore`): data in and out, autograd, threads, RNG. */
export interface NativeCore extends NativeDist {
  /** Copies `bytes` into a new CPU tensor of `dtype` and `shape` (which must cover them exactly). */
  fromBuffer(bytes: ArrayBufferView | ArrayBuffer, dtype: DType, shape: readonly number[] | number): Handle;
  /** A tensor over `bytes` without copying; it keeps the ArrayBuffer alive. */
  fromBufferShared(bytes: ArrayBufferView | ArrayBuffer, dtype: DType, shape: readonly number[] | number): Handle;
  /** The elements, row-major on the CPU, in a new ArrayBuffer. */
  toBuffer(t: Handle): ArrayBuffer;
  info(t: Handle): [shape: number[], dtype: DType, device: Device];
  strides(t: Handle): number[];
  /** The value of a one-element tensor: a boolean for a bool tensor. */
  item(t: Handle): number | boolean;
  /** Frees the handle's tensor now; a second call (or a non-handle) does nothing. */
  free(t: Handle): void;
  memory(): { count: number; bytes: number; cachedBytes: number };
  emptyCache(): void;
  backward(t: Handle, gradient: Handle | null, retainGraph: boolean | null, createGraph?: boolean | null): void;
  autogradGrad(outputs: readonly Handle[], inputs: readonly Handle[], gradOutputs: readonly Handle[] | null,
    retainGraph: boolean | null, createGraph: boolean, allowUnused: boolean): (Handle | null)[];
  grad(t: Handle): Handle | null;
  setGrad(t: Handle, grad: Handle | null): void;
  /** Sets `requires_grad` when `value` is given; returns the (new) flag. */
  requiresGrad(t: Handle, value?: boolean): boolean;
  isLeaf(t: Handle): boolean;
  retainGrad(t: Handle): void;
  /** Sets grad mode when `enabled` is given; returns the previous state. */
  gradEnabled(enabled?: boolean): boolean;
  isContiguous(t: Handle, memoryFormat?: MemoryFormat | null): boolean;
  sameStorage(a: Handle, b: Handle): boolean;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number | bigint): void;
  /** The default CPU generator's state (a uint8 tensor), or, given one, sets it. */
  rngState(): Handle;
  rngState(state: Handle): void;
  buildInfo(): { torchVersion: string; config: string; parallel: string; cuda: boolean; mkldnn: boolean };
  /** Registers the class the addon throws libtorch's errors as (TorchError). */
  setErrorClass(errorClass: new (message: string) => Error): void;
  // TorchScript modules (jit.cc's `jitTable`; used by nn.ScriptModule)
  jitLoad(path: string): JitHandle;
  jitForward(m: JitHandle, inputs: Handle[]): unknown;
  jitNamedParameters(m: JitHandle): [string, Handle][];
  jitNamedBuffers(m: JitHandle): [string, Handle][];
  jitTrain(m: JitHandle, on: boolean): void;
  jitIsTraining(m: JitHandle): boolean;
  jitSave(m: JitHandle, path: string): void;
}
/**
 * distributed.cc's `distTable`: CUDA queries and torch.distributed over c10d (used by
 * src/distributed). Collectives taking a Promise run off the JS thread; the `WithGrad` ones are
 * autograd Functions that wait on the calling thread (their backward runs there too).
 */
export interface NativeDist {
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  cudaSynchronize(device?: number | null): void;
  /** Which backends this addon was built with. */
  distAvailable(): { gloo: boolean; nccl: boolean };
  /** store 'tcp': hostOrPath is the master's address (rank 0 serves the TCPStore on port); 'file': a FileStore path. */
  distInit(backend: string, store: 'tcp' | 'file', hostOrPath: string, port: number, rank: number, worldSize: number, timeoutMs: number, deviceIndex: number): Promise<void>;
  distDestroy(): void;
  distInfo(): { rank: number; worldSize: number; backend: string } | null;
  distAllReduce(t: Handle, op: string): Promise<void>;
  distAllGather(t: Handle): Promise<Handle[]>;
  distBroadcast(t: Handle, src: number): Promise<void>;
  distBarrier(): Promise<void>;
  distReduceScatter(output: Handle, inputs: readonly Handle[], op: string): Promise<void>;
  distAllReduceWithGrad(t: Handle): Handle;
  distGatherWithGrad(t: Handle): Handle;
  distReducerNew(params: readonly Handle[], bucketCapBytes: number, overlap: boolean): ReducerHandle;
  distReducerFinish(r: ReducerHandle): Promise<void>;
  distReducerEnable(r: ReducerHandle, on: boolean): void;
  /** [bucket count, bytes of the largest bucket, buckets started during backward, synced steps] */
  distReducerInfo(r: ReducerHandle): [number, number, number, number];
  distReducerFree(r: ReducerHandle): void;
}
/** A DDP gradient reducer in the addon (an opaque External). */
export type ReducerHandle = { readonly __reducer: unique symbol };
/** A TorchScript module in the addon (an opaque External). */
export type JitHandle = { readonly __jit: unique symbol };
/** `kCore`'s names, in addon.cc's order, then `jitTable`'s. */
export const NATIVE_CORE_NAMES = [
  'fromBuffer', 'fromBufferShared', 'toBuffer', 'info', 'strides', 'item', 'free', 'memory', 'emptyCache', 'backward', 'autogradGrad',
  'grad', 'setGrad', 'requiresGrad', 'isLeaf', 'retainGrad', 'gradEnabled', 'isContiguous', 'sameStorage', 'setNumThreads',
  'getNumThreads', 'manualSeed', 'rngState', 'buildInfo', 'setErrorClass',
  'jitLoad', 'jitForward', 'jitNamedParameters', 'jitNamedBuffers', 'jitTrain', 'jitIsTraining', 'jitSave',
  'cudaIsAvailable', 'cudaDeviceCount', 'cudaSynchronize', 'distAvailable', 'distInit', 'distDestroy', 'distInfo', 'distAllReduce',
  'distAllGather', 'distBroadcast', 'distBarrier', 'distReduceScatter', 'distAllReduceWithGrad', 'distGatherWithGrad',
  'distReducerNew', 'distReducerFinish', 'distReducerEnable', 'distReducerInfo', 'distReducerFree',
] as const;

/** Every export of the addon: core functions, the op table, and `opNames`. */
export interface NativeOps extends NativeCore, NativeOpTable {
  readonly opNames: readonly string[];
}

// Compile-time checks that the run-time lists and the types name the same things.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
type _CoreNamesMatch = Assert<Same<keyof NativeCore, (typeof NATIVE_CORE_NAMES)[number]>>;
type _ArgKindsMatch = Assert<Same<keyof NativeArgTypes, (typeof NATIVE_ARG_KINDS)[number]>>;
type _ReturnKindsMatch = Assert<Same<keyof NativeReturnTypes, (typeof NATIVE_RETURN_KINDS)[number]>>;
