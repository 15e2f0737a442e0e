/** Activation modules, each a thin wrapper over its `nn.functional` op. */
import type { Tensor } from '../torch/tensor.js';
import * as F from '../torch/functional.js';
import { Module } from './module.js';

/** max(0, x). */
export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return F.relu(x);
  }
}

/** GELU (Hendrycks & Gimpel 2016): x·Φ(x); `approximate: 'tanh'` for the tanh form (GPT-2, some ViTs). */
export class GELU extends Module {
  readonly approximate: 'none' | 'tanh';
  constructor(o: { approximate?: 'none' | 'tanh' } = {}) {
    super();
    this.approximate = o.approximate ?? 'none';
    if (this.approximate !== 'none' && this.approximate !== 'tanh') throw new TypeError(`GELU: approximate must be 'none' or 'tanh', got '${String(o.approximate)}'`);
  }
  forward(x: Tensor): Tensor {
    return F.gelu(x, { approximate: this.approximate });
  }
  override extraRepr(): string {
    return `approximate='${this.approximate}'`;
  }
}

/** OpenAI CLIP's QuickGELU: x·σ(1.702·x) (Radford et al. 2021). */
export class QuickGELU extends Module {
  forward(x: Tensor): Tensor {
    return F.quickGelu(x);
  }
}

/** SiLU / swish: x·σ(x) (Elfwing et al. 2017; Ramachandran et al. 2017). */
export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return F.silu(x);
  }
}

/** Mish: x·tanh(softplus(x)) (Misra 2019). */
export class Mish extends Module {
  forward(x: Tensor): Tensor {
    return F.mish(x);
  }
}

/** max(0, x) + negativeSlope·min(0, x); default slope 0.01. */
export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.leakyRelu(x, { negativeSlope: this.negativeSlope });
  }
  override extraRepr(): string {
    return `negative_slope=${this.negativeSlope}`;
  }
}

/** 1 / (1 + e⁻ˣ). */
export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return F.sigmoid(x);
  }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return F.tanh(x);
  }
}

/** Softmax along `dim` (required: PyTorch's implicit-dim default is deprecated). */
export class Softmax extends Module {
  constructor(readonly dim: number) {
    super();
    if (!Number.isInteger(dim)) throw new TypeError('Softmax: pass the dimension, e.g. new nn.Softmax(-1)');
  }
  forward(x: Tensor): Tensor {
    return F.softmax(x, this.dim);
  }
  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}

/** log(softmax(x)) along `dim`, computed stably. */
export class LogSoftmax extends Module {
  constructor(readonly dim: number) {
    super();
    if (!Number.isInteger(dim)) throw new TypeError('LogSoftmax: pass the dimension, e.g. new nn.LogSoftmax(-1)');
  }
  forward(x: Tensor): Tensor {
    return F.logSoftmax(x, this.dim);
  }
  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}
