/**
 * `torch.cuda`'s queries: `isAvailable()`, `deviceCount()`, `synchronize()`. They work in every
 * libtorch: a CPU build (Debian's) answers false and 0, and `synchronize` there throws a
 * DyadError naming the reason.
 */
import { DyadError } from '../errors.js';
import { N } from '../torch/native.js';

/** True when libtorch has CUDA and sees a GPU (PyTorch's `torch.cuda.is_available()`). */
export function isAvailable(): boolean {
  return N.cudaIsAvailable();
}
/** Number of visible CUDA devices; 0 in a CPU build. */
export function deviceCount(): number {
  return N.cudaDeviceCount();
}
/** Waits for every kernel queued on `device` (default: the current one) to finish. */
export function synchronize(device?: number): void {
  if (!N.cudaIsAvailable()) {
    throw new DyadError('DIST_UNAVAILABLE', 'cuda.synchronize: no CUDA device: this libtorch has no CUDA or no GPU is visible (cuda.isAvailable() is false)');
  }
  N.cudaSynchronize(device ?? null);
}
