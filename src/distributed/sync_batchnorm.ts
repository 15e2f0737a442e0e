/**
 * `SyncBatchNorm` (PyTorch's `torch.nn.SyncBatchNorm`; Zhang et al. 2018, "Context Encoding for
 * Semantic Segmentation", cross-GPU BN; Peng et al. 2018, MegDet): batch normalization whose batch
 * statistics are those of the whole global batch, every rank's samples together. Contrastive
 * methods need it: with per-rank BN, a rank can tell its own samples apart from the statistics
 * ("information leakage", MoCo's shuffling BN and SimCLR's global BN).
 *
 * x: [N, C, *] on each rank → y of the same shape. In training mode, with more than one rank:
 *   mean = Σ_ranks Σ x / count,   var = Σ_ranks Σ (x − mean)² / count   (biased, two passes)
 *   y = (x − mean) / √(var + eps) · weight + bias
 * Both sums are differentiable all-reduces (`allReduceWithGrad`, a native autograd Function whose
 * backward all-reduces the gradient), so the gradients are those of BatchNorm over the global batch:
 * the sum over ranks of the per-rank losses, differentiated through the shared statistics. The
 * running statistics get the global mean and the unbiased global variance, so they are the same on
 * every rank. In eval mode, or without a process group of more than one rank, it is BatchNorm.
 *
 * `SyncBatchNorm.convert(module)` replaces every BatchNorm1d/2d of a module in place (PyTorch's
 * `convert_sync_batchnorm`), keeping the parameters, buffers and names, so checkpoints load both ways.
 */
import type { Tensor } from '../torch/tensor.js';
import * as torch from '../torch/index.js';
import { noGrad } from '../torch/autograd.js';
import { Module } from '../nn/module.js';
import { BatchNormBase } from '../nn/normalization.js';
import { allReduceWithGrad, getWorldSize, isInitialized } from './process_group.js';

export class SyncBatchNorm extends BatchNormBase {
  protected checkInputDim(x: Tensor): void {
    if (x.ndim < 2) throw new RangeError(`SyncBatchNorm: expected at least 2D input [N, C, *], got shape [${x.shape.join(', ')}]`);
  }

  override forward(x: Tensor): Tensor {
    if (!this.training || !isInitialized() || getWorldSize() === 1) return super.forward(x);
    this.checkInputDim(x);
    const c = x.size(1);
    if (c !== this.numFeatures) throw new RangeError(`SyncBatchNorm: expected ${this.numFeatures} channels in dimension 1, got shape [${x.shape.join(', ')}]`);
    const dims = [0, ...Array.from({ length: x.ndim - 2 }, (_, i) => i + 2)];
    const shape = [1, c, ...Array.from({ length: x.ndim - 2 }, () => 1)];
    return torch.scope(() => {
      const local = torch.cat([x.sum(dims), torch.full([1], x.numel() / c, { dtype: x.dtype })]);
      const total = allReduceWithGrad(local); // [C + 1]: Σx per channel, then the global count
      const count = total.get(c).item() as number;
      if (count <= 1) throw new RangeError(`SyncBatchNorm: expected more than 1 value per channel over all ranks in training, got ${count}`);
      const mean = total.narrow(0, 0, c).div(count);
      const xc = x.sub(mean.view(shape));
      const variance = allReduceWithGrad(xc.square().sum(dims)).div(count);
      let y = xc.mul(variance.add(this.eps).rsqrt().view(shape));
      if (this.weight !== null && this.bias !== null) y = y.mul(this.weight.view(shape)).add(this.bias.view(shape));
      if (this.trackRunningStats && this.running_mean !== null && this.running_var !== null) {
        noGrad(() => {
          this.num_batches_tracked?.add_(1);
          const f = this.momentum ?? 1 / (this.num_batches_tracked!.item() as number);
          this.running_mean!.mul_(1 - f).add_(mean.detach().mul(f));
          this.running_var!.mul_(1 - f).add_(variance.detach().mul((f * count) / (count - 1)));
        });
      }
      return y;
    });
  }

  /**
   * Replaces every BatchNorm (1d/2d) in `module` by a SyncBatchNorm holding the same parameters
   * and buffers (PyTorch's `convert_sync_batchnorm`). Returns `module`, or the new SyncBatchNorm
   * when `module` itself is a BatchNorm.
   */
  static convert<M extends Module>(module: M): M | SyncBatchNorm {
    if (module instanceof BatchNormBase && !(module instanceof SyncBatchNorm)) return fromBatchNorm(module);
    for (const [name, child] of module.namedChildren()) {
      const next = SyncBatchNorm.convert(child);
      if (next !== child) module.registerModule(name, next);
    }
    return module;
  }
}

function fromBatchNorm(bn: BatchNormBase): SyncBatchNorm {
  const s = new SyncBatchNorm(bn.numFeatures, { eps: bn.eps, momentum: bn.momentum, affine: bn.affine, trackRunningStats: bn.trackRunningStats });
  s.weight?.dispose();
  s.bias?.dispose();
  s.registerParameter('weight', bn.weight);
  s.registerParameter('bias', bn.bias);
  if (bn.trackRunningStats) {
    s.registerBuffer('running_mean', bn.running_mean);
    s.registerBuffer('running_var', bn.running_var);
    s.registerBuffer('num_batches_tracked', bn.num_batches_tracked);
  }
  s.training = bn.training;
  return s;
}
