/**
 * Automatic mixed precision: `torch.autocast`, over libtorch's thread-local autocast state
 * (ATen/autocast_mode.h: `set_enabled` / `set_cpu_enabled`, `set_autocast_gpu_dtype` /
 * `set_autocast_cpu_dtype`, and the nesting counter whose outermost exit clears the cast cache).
 * Inside a region, ops on autocast's lower-precision list (matmul, linear, conv, ...) run in
 * `dtype` (bfloat16 on the CPU; float16 or bfloat16 on CUDA) and precision-sensitive ones
 * (softmax, log, norms, losses) in float32, as in PyTorch (Micikevicius et al. 2018, "Mixed
 * Precision Training"). Backward runs outside the region, in the forward's dtypes. For float16
 * gradients use a `GradScaler` (src/optim/grad_scaler.ts).
 */
import { N } from './native.js';
import type { DType } from './dtype.js';
import { DyadError } from './errors.js';

export type AutocastDevice = 'cpu' | 'cuda';
export interface AutocastOptions {
  deviceType: AutocastDevice;
  /** Default: bfloat16 on the CPU, float16 on CUDA (PyTorch's). */
  dtype?: 'bfloat16' | 'float16';
  enabled?: boolean;
}

// the state dyad last set, per device type (libtorch's defaults at start)
const state: Record<AutocastDevice, { enabled: boolean; dtype: DType }> = {
  cpu: { enabled: false, dtype: 'bfloat16' },
  cuda: { enabled: false, dtype: 'float16' },
};

/** True inside an enabled autocast region of `deviceType` (PyTorch's `torch.is_autocast_enabled`). */
export function isAutocastEnabled(deviceType: AutocastDevice = 'cuda'): boolean {
  return N.autocastIsEnabled(deviceType);
}

/**
 * Runs `fn` with autocast set as `opts` says, then restores the previous state (also when `fn`
 * throws). `fn` may return a Promise: the state holds until it settles (do not interleave other
 * work in between: the state is per thread, not per async call).
 */
export function autocast<T>(opts: AutocastOptions, fn: () => T): T {
  const device = opts.deviceType;
  if (device !== 'cpu' && device !== 'cuda') throw new DyadError('TORCH', `autocast: deviceType must be 'cpu' or 'cuda', got '${String(device)}'`);
  const dtype = opts.dtype ?? (device === 'cpu' ? 'bfloat16' : 'float16');
  if (dtype !== 'bfloat16' && dtype !== 'float16') throw new DyadError('TORCH', `autocast: dtype must be 'bfloat16' or 'float16', got '${String(dtype)}'`);
  if (device === 'cpu' && dtype !== 'bfloat16') {
    throw new DyadError('TORCH', "autocast: libtorch's CPU autocast supports bfloat16 only; use dtype 'bfloat16' (float16 needs deviceType 'cuda')");
  }
  const prev = { ...state[device] };
  const enabled = opts.enabled ?? true;
  N.autocastSet(device, enabled, dtype);
  state[device] = { enabled, dtype };
  N.autocastNest(true);
  const restore = (): void => {
    N.autocastNest(false);
    N.autocastSet(device, prev.enabled, prev.dtype);
    state[device] = prev;
  };
  let out: T;
  try {
    out = fn();
  } catch (e) {
    restore();
    throw e;
  }
  if (out instanceof Promise) return out.finally(restore) as T;
  restore();
  return out;
}
