/**
 * `gatherWithGrad`: the differentiable all-gather of SimCLR's and lightly's `GatherLayer`
 * (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations",
 * large-batch training; lightly/utils/dist.py), so that a contrastive loss sees the negatives of
 * every rank.
 *
 * Forward: x [n, ...] on each of W ranks → [W·n, ...], rank r's rows at [r·n, (r+1)·n).
 * Backward: the gradient of the gathered tensor is summed over ranks (all-reduce) and this rank's
 * rows are returned: every rank's loss depends on every rank's rows. With DDP's averaging of the
 * parameter gradients this gives exactly the gradient of the mean of the per-rank losses, which is
 * the single-process loss on the concatenated batch for a mean-reduced loss.
 *
 * It is a C++ autograd Function in the addon (native/src/distributed.cc): backward of CPU tensors
 * runs on the thread that called `backward()`, so the collective has to happen there, natively.
 * Synchronous, as an op; every rank must call it with the same shape, in the same order.
 * Without an initialized group (or with one rank) it returns `x` itself, as lightly does.
 */
import type { Tensor } from '../torch/tensor.js';
import { N } from '../torch/native.js';
import { wrap } from '../torch/tensor.js';
import { distError, getRank, getWorldSize, isInitialized } from './process_group.js';

export function gatherWithGrad(x: Tensor): Tensor {
  if (!isInitialized() || getWorldSize() === 1) return x;
  try {
    return wrap(N.distGatherWithGrad(x.handle));
  } catch (e) {
    throw distError('gatherWithGrad', getRank(), e);
  }
}
