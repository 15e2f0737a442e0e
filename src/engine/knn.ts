/**
 * Weighted k-nearest-neighbour classifier on embeddings, the online monitor of
 * self-supervised training (Wu et al. 2018, "Unsupervised Feature Learning via Non-Parametric
 * Instance Discrimination", §3.4; the k=200, τ=0.1 protocol of lightly and solo-learn).
 *
 * Each query's k most cosine-similar training embeddings vote for their class with weight
 * exp(sim / τ); the class with the largest total wins. Queries run in chunks so memory stays
 * at chunk × N similarities.
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

export interface KNNOptions {
  /** Neighbours that vote (default 200, clipped to the bank size). */
  k?: number;
  /** Temperature of the vote weights exp(sim/τ) (default 0.1). */
  temperature?: number;
  /** Number of classes (default: max label + 1). */
  numClasses?: number;
  /** Queries per chunk (default 512). */
  chunkSize?: number;
}

/**
 * Predicted class scores [Q, C] for `queries` [Q, D] given a labelled `bank` [N, D] and
 * `bankLabels` [N] (int64). Embeddings need not be normalised; they are normalised here.
 */
export function knnScores(queries: Tensor, bank: Tensor, bankLabels: Tensor, opts: KNNOptions = {}): Tensor {
  const k = Math.min(opts.k ?? 200, bank.size(0));
  const t = opts.temperature ?? 0.1;
  const chunk = opts.chunkSize ?? 512;
  if (queries.size(1) !== bank.size(1)) {
    throw new RangeError(`knn: queries have dim ${queries.size(1)} but the bank has dim ${bank.size(1)}`);
  }
  if (bankLabels.size(0) !== bank.size(0)) throw new RangeError(`knn: ${bank.size(0)} bank rows but ${bankLabels.size(0)} labels`);
  return torch.noGrad(() =>
    torch.scope(() => {
      const numClasses = opts.numClasses ?? bankLabels.max().item() + 1;
      const bankN = torch.functional.normalize(bank.float());
      const labels = bankLabels.long().to(bankN.device);
      const parts: Tensor[] = [];
      for (let start = 0; start < queries.size(0); start += chunk) {
        parts.push(
          torch.scope(() => {
            const q = torch.functional.normalize(queries.narrow(0, start, Math.min(chunk, queries.size(0) - start)).float());
            const sim = q.matmul(bankN.t()); // [q, N]
            const { values, indices } = sim.topk(k, { dim: 1 });
            const neighbourLabels = labels.index([indices]); // [q, k]
            const weights = values.div(t).exp();
            const scores = torch.zeros([q.size(0), numClasses], { device: q.device });
            return scores.scatterAdd(1, neighbourLabels, weights);
          }),
        );
      }
      return torch.cat(parts, 0);
    }),
  );
}

/** Top-1 accuracy (0..1) of the weighted kNN classifier on labelled queries. */
export function knnAccuracy(queries: Tensor, queryLabels: Tensor, bank: Tensor, bankLabels: Tensor, opts: KNNOptions = {}): number {
  return torch.scope(() => {
    const pred = knnScores(queries, bank, bankLabels, opts).argmax(1);
    return pred.eq(queryLabels.long()).float().mean().item();
  });
}
