/** Embedding datasets with a model (eval mode, no grad, batched) and the kNN monitor on top. */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { InMemoryDataset } from '../data/index.js';
import { normalize } from '../transforms/index.js';
import { knnAccuracy, type KNNOptions } from './knn.js';

/** Features [len(indices), D] of `dataset[indices]` under `embed`, in eval mode and without gradients. */
export function embedIndices(embed: (x: Tensor) => Tensor, dataset: InMemoryDataset, indices: number[],
  o: { mean: number[]; std: number[]; batch?: number }): Tensor {
  const bs = o.batch ?? 512;
  return torch.noGrad(() => torch.scope(() => {
    const parts: Tensor[] = [];
    for (let i = 0; i < indices.length; i += bs) {
      parts.push(torch.scope(() => {
        const b = dataset.tensorBatch(indices.slice(i, i + bs));
        return embed(normalize(b.images, o));
      }));
    }
    return torch.cat(parts, 0);
  }));
}

/** kNN top-1 of `embed` with a labelled bank and queries (the online monitor). */
export function knnMonitor(embed: (x: Tensor) => Tensor, sets: { bank: InMemoryDataset; bankIndices: number[]; queries: InMemoryDataset; queryIndices: number[] },
  o: { mean: number[]; std: number[]; batch?: number } & KNNOptions): number {
  return torch.scope(() => {
    const bank = embedIndices(embed, sets.bank, sets.bankIndices, o);
    const queries = embedIndices(embed, sets.queries, sets.queryIndices, o);
    const label = (ds: InMemoryDataset, idx: number[]): Tensor => torch.tensor(new BigInt64Array(idx.map((i) => BigInt(ds.labels[i]!))));
    return knnAccuracy(queries, label(sets.queries, sets.queryIndices), bank, label(sets.bank, sets.bankIndices), { ...o, numClasses: sets.bank.names.length || undefined });
  });
}
