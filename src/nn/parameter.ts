/**
 * `Parameter`: a `Tensor` that a `Module` owns as learnable state, as `torch.nn.Parameter`.
 *
 * A subclass rather than a flag, so that `Module` can discover parameters by type
 * (`this.weight = new nn.Parameter(t)` registers `weight`) and so that `instanceof` tells
 * a parameter from a plain tensor anywhere. A parameter is always:
 * - a leaf with `requiresGrad` (unless constructed with `requiresGrad = false`);
 * - kept (`keep()`): no `torch.scope` frees it; free it with `dispose()` (or `Module.dispose()`).
 *
 * Ops on a parameter return plain `Tensor`s, as in PyTorch.
 */
import { N, type Handle } from '../torch/native.js';
import { Tensor } from '../torch/tensor.js';
import { empty } from '../torch/creation.js';
import type { DType, Device } from '../torch/dtype.js';

/** `dtype` and `device` of the parameters and buffers a layer creates (PyTorch's factory kwargs). */
export interface FactoryOptions {
  dtype?: DType;
  device?: Device;
}

export class Parameter extends Tensor {
  /**
   * A parameter viewing `data`'s storage (as `nn.Parameter(data)`: no copy). `data` itself is
   * not taken over: it still belongs to its scope, or to you to dispose.
   */
  constructor(data: Tensor, requiresGrad = true) {
    super(N.detach!(data.handle) as Handle);
    this.keep();
    if (requiresGrad) this.requiresGrad_(true);
  }

  /**
   * Points this parameter at `data`'s storage (dtype, device and shape included), keeping the
   * parameter object itself, as `param.data = data` in PyTorch. `Module.to()` uses it, so that
   * references to the parameter (an optimizer's list, say) stay valid. `data` is not taken over.
   */
  setData_(data: Tensor): this {
    const requiresGrad = this.requiresGrad;
    this._replaceHandle(N.detach!(data.handle) as Handle);
    if (requiresGrad) this.requiresGrad_(true);
    return this;
  }
}

/** A new parameter of `shape` with uninitialised values (fill it with an `nn.init` function). */
export function emptyParameter(shape: number[], f: FactoryOptions = {}, requiresGrad = true): Parameter {
  const t = empty(shape, { dtype: f.dtype, device: f.device });
  const p = new Parameter(t, requiresGrad);
  t.dispose();
  return p;
}
