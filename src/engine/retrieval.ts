/**
 * Retrieval metrics of embeddings with class labels, each item querying all the others (Musgrave,
 * Belongie & Lim 2020, "A Metric Learning Reality Check", §3.2):
 * - recall@1: the fraction of queries whose nearest neighbour (cosine, itself left out) has the
 *   query's class;
 * - mAP@R: with R the number of other items of the query's class, the mean over queries of
 *   (1/R) Σ_{i ≤ R} P(i)·rel(i), P(i) the precision at rank i and rel(i) whether rank i matches.
 *
 * `retrievalMetrics(embeddings [N, D], labels [N])`; queries are processed in chunks so memory
 * stays at chunk × N similarities.
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

export interface RetrievalMetrics {
  recall_at_1: number;
  map_at_r: number;
  queries: number;
}

export function retrievalMetrics(embeddings: Tensor, labels: ArrayLike<number>, o: { chunk?: number } = {}): RetrievalMetrics {
  const n = embeddings.size(0);
  if (labels.length !== n) throw new RangeError(`retrievalMetrics: ${labels.length} labels for ${n} embeddings`);
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) counts.set(labels[i]!, (counts.get(labels[i]!) ?? 0) + 1);
  const maxR = Math.max(...[...counts.values()].map((c) => c - 1));
  const chunk = o.chunk ?? 512;
  let hits = 0;
  let apSum = 0;
  let queries = 0;
  torch.scope(() => {
    const z = torch.functional.normalize(embeddings.float());
    for (let s = 0; s < n; s += chunk) {
      torch.scope(() => {
        const m = Math.min(chunk, n - s);
        const sim = z.narrow(0, s, m).matmul(z.t());
        // leave each query out of its own ranking
        const self = torch.arange(s, s + m, 1, { device: z.device }).unsqueeze(1);
        sim.scatter_(1, self, torch.full([m, 1], -Infinity, { device: z.device }));
        const k = Math.max(1, Math.min(maxR, n - 1));
        const top = sim.topk(k, { dim: 1 }).indices.int().toArray() as number[]; // [m·k], row-major
        for (let q = 0; q < m; q++) {
          const y = labels[s + q]!;
          const r = counts.get(y)! - 1;
          if (r === 0) continue;
          queries++;
          const row = (i: number): number => top[q * k + i]!;
          if (labels[row(0)] === y) hits++;
          let rel = 0;
          let ap = 0;
          for (let i = 0; i < r; i++) {
            if (labels[row(i)] === y) { rel++; ap += rel / (i + 1); }
          }
          apSum += ap / r;
        }
      });
    }
  });
  return { recall_at_1: queries ? hits / queries : 0, map_at_r: queries ? apSum / queries : 0, queries };
}
