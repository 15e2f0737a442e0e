/**
 * A worker thread of UMAP's Hogwild layout (umap.ts `hogwild`): runs `layoutEpoch` on its range
 * of edges of the shared layout each time the main thread posts an epoch, then answers.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { layoutEpoch } from './umap_sgd.js';

const d = workerData as {
  emb: Float32Array; head: Int32Array; tail: Int32Array; eps: Float64Array; epsNeg: Float64Array; next: Float64Array; nextNeg: Float64Array;
  n: number; t0: number; t1: number; seed: number;
};
const state = { rand: (d.seed | 0) || 1 };
parentPort!.on('message', (m: { epoch: number; alpha: number }) => {
  layoutEpoch(d.emb, d.n, d.head, d.tail, d.eps, d.next, d.epsNeg, d.nextNeg, d.t0, d.t1, m.epoch, m.alpha, state);
  parentPort!.postMessage(m.epoch);
});
