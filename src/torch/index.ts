/**
 * dyad's tensor layer: `Tensor`, creation, ops, autograd and memory scopes over libtorch.
 * Knows nothing of contrastive learning. The public `dyad/torch` entry (src/torch-api.ts)
 * adds `nn` and `optim` on top.
 */
export { Tensor, type Scalar, type TensorOrScalar, type Shape, type MemoryFormat } from './tensor.js';
export * from './creation.js';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled } from './autograd.js';
export * as autograd from './autograd.js';
export { scope, disposeAll, scopeDepth } from './scope.js';
export { DyadError, ERROR_CODES, isDyadError, TorchError, DisposedTensorError, type DyadErrorCode } from './errors.js';
export { type DType, type Device, type TypedArray, DTYPES, itemSize, isFloatingPoint } from './dtype.js';
export * as functional from './functional.js';
export { autocast, isAutocastEnabled, type AutocastOptions, type AutocastDevice } from './amp.js';
export * from './safetensors.js';
export { writeFileAtomic, isAtomicTempFile, type AtomicData } from './io.js';
export { saveNpy, loadNpy, toNpy } from './npy.js';
export { load, loadStateDict, TorchLoadError, type PyValue } from './torch_load.js';
