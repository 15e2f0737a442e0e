/**
 * A FIFO queue of negative embeddings, as MoCo's dictionary (He et al. 2020, "Momentum
 * Contrast for Unsupervised Visual Representation Learning", §3.2).
 *
 * A module with two buffers, so the queue is saved in checkpoints and restored on resume:
 * `bank` [size, dim] (initialised with random unit vectors, as the reference implementation
 * does) and `bank_ptr` [1] (int64, the next row to overwrite). `enqueue(keys [B, dim])`
 * overwrites the oldest B rows.
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

export class MemoryBank extends nn.Module {
  readonly size: number;
  readonly dim: number;
  declare bank: Tensor;
  declare bank_ptr: Tensor;

  constructor(opts: { size: number; dim: number }) {
    super();
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new RangeError(`MemoryBank: size must be a positive integer, got ${opts.size}`);
    if (!Number.isInteger(opts.dim) || opts.dim < 1) throw new RangeError(`MemoryBank: dim must be a positive integer, got ${opts.dim}`);
    this.size = opts.size;
    this.dim = opts.dim;
    this.registerBuffer('bank', torch.scope(() => torch.functional.normalize(torch.randn([opts.size, opts.dim]))));
    this.registerBuffer('bank_ptr', torch.zeros([1], { dtype: 'int64' }));
  }

  /**
   * A copy of the queue [size, dim]. A copy, because `enqueue` overwrites the bank in place
   * while autograd may still hold the negatives for the backward pass (as lightly does).
   */
  negatives(): Tensor {
    return this.bank.clone();
  }

  /** The next row to overwrite (the oldest entry). */
  get pointer(): number {
    return this.bank_ptr.item();
  }

  /** Writes `keys` [B, dim] (detached) over the oldest rows, wrapping around. */
  enqueue(keys: Tensor): void {
    const [b, d] = keys.shape as [number, number];
    if (d !== this.dim) throw new RangeError(`MemoryBank.enqueue: keys have dim ${d}, the bank holds ${this.dim}`);
    torch.scope(() =>
      torch.noGrad(() => {
        let k = keys.detach();
        if (b > this.size) k = k.narrow(0, b - this.size, this.size);
        let ptr = this.pointer;
        let n = k.size(0);
        let off = 0;
        while (n > 0) {
          const take = Math.min(n, this.size - ptr);
          this.bank.narrow(0, ptr, take).copy_(k.narrow(0, off, take));
          ptr = (ptr + take) % this.size;
          off += take;
          n -= take;
        }
        this.bank_ptr.fill_(ptr);
      }),
    );
  }

  forward(keys: Tensor): Tensor {
    const negatives = this.negatives();
    this.enqueue(keys);
    return negatives;
  }
}
