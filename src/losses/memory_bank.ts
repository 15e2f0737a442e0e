/**
 * A FIFO queue of negative embeddings, as MoCo's dictionary (He et al. 2020, "Momentum
 * Contrast for Unsupervised Visual Representation Learning", §3.2).
 *
 * Holds `size` rows of `dim`-d L2-normalised vectors. `enqueue(keys [B, dim])` overwrites the
 * oldest B rows; `negatives()` returns the queue [size, dim]. Initialised with random unit
 * vectors, as the reference implementation does. The state (queue and pointer) goes into
 * checkpoints through `stateDict()`.
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

export class MemoryBank {
  readonly size: number;
  readonly dim: number;
  private bank: Tensor;
  private ptr = 0;
  /** Rows written so far (saturates at `size`). */
  private filled = 0;

  constructor(opts: { size: number; dim: number }) {
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new RangeError(`MemoryBank: size must be a positive integer, got ${opts.size}`);
    if (!Number.isInteger(opts.dim) || opts.dim < 1) throw new RangeError(`MemoryBank: dim must be a positive integer, got ${opts.dim}`);
    this.size = opts.size;
    this.dim = opts.dim;
    this.bank = torch.scope(() => torch.functional.normalize(torch.randn([opts.size, opts.dim]))).keep();
  }

  /**
   * A copy of the queue [size, dim]. A copy, because `enqueue` overwrites the bank in place
   * while autograd may still hold the negatives for the backward pass (as lightly does).
   */
  negatives(): Tensor {
    return this.bank.clone();
  }

  /** Current write position (the index of the oldest row). */
  get pointer(): number {
    return this.ptr;
  }

  /** Writes `keys` [B, dim] (detached) over the oldest rows, wrapping around. */
  enqueue(keys: Tensor): void {
    const [b, d] = keys.shape as [number, number];
    if (d !== this.dim) throw new RangeError(`MemoryBank.enqueue: keys have dim ${d}, the bank holds ${this.dim}`);
    torch.scope(() =>
      torch.noGrad(() => {
        let k = keys.detach();
        if (b > this.size) k = k.narrow(0, b - this.size, this.size);
        let n = k.size(0);
        let off = 0;
        while (n > 0) {
          const take = Math.min(n, this.size - this.ptr);
          this.bank.narrow(0, this.ptr, take).copy_(k.narrow(0, off, take));
          this.ptr = (this.ptr + take) % this.size;
          off += take;
          n -= take;
        }
        this.filled = Math.min(this.size, this.filled + b);
      }),
    );
  }

  stateDict(): { tensors: Record<string, Tensor>; meta: { ptr: number; filled: number } } {
    return { tensors: { bank: this.bank }, meta: { ptr: this.ptr, filled: this.filled } };
  }

  loadStateDict(s: { tensors: Record<string, Tensor>; meta: { ptr: number; filled: number } }): void {
    const b = s.tensors.bank;
    if (!b || b.shape[0] !== this.size || b.shape[1] !== this.dim) {
      throw new RangeError(`MemoryBank.loadStateDict: expected bank [${this.size}, ${this.dim}], got [${b?.shape.join(', ') ?? 'none'}]`);
    }
    torch.noGrad(() => this.bank.copy_(b));
    this.ptr = s.meta.ptr;
    this.filled = s.meta.filled;
  }

  dispose(): void {
    this.bank.dispose();
  }
}
