// Retrieval metrics (recall@1, mAP@R) against a plain-JS brute force over every pair.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import { retrievalMetrics } from '../src/engine/retrieval.js';

test('recall@1 and mAP@R equal a brute-force ranking of every other item', () => {
  let seed = 3;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  const n = 40;
  const labels = Array.from({ length: n }, (_, i) => (i * 7) % 5);
  const x = labels.map((y) => [y === 0 ? 1 : 0, y === 1 ? 1 : 0, y === 2 ? 1 : 0, rnd(), rnd(), rnd()].map((v) => v + rnd()));
  const unit = (v: number[]): number[] => { const s = Math.hypot(...v); return v.map((t) => t / s); };
  const z = x.map(unit);
  let hits = 0;
  let ap = 0;
  for (let q = 0; q < n; q++) {
    const others = [...Array(n).keys()].filter((j) => j !== q).sort((a, b) => z[q]!.reduce((s, v, k) => s + v * z[b]![k]!, 0) - z[q]!.reduce((s, v, k) => s + v * z[a]![k]!, 0));
    if (labels[others[0]!] === labels[q]) hits++;
    const r = labels.filter((y, j) => j !== q && y === labels[q]).length;
    let rel = 0;
    let sum = 0;
    for (let i = 0; i < r; i++) if (labels[others[i]!] === labels[q]) { rel++; sum += rel / (i + 1); }
    ap += sum / r;
  }
  const m = retrievalMetrics(torch.tensor(x), labels, { chunk: 7 });
  assert.equal(m.queries, n);
  assert.ok(Math.abs(m.recall_at_1 - hits / n) < 1e-12, `${m.recall_at_1} vs ${hits / n}`);
  assert.ok(Math.abs(m.map_at_r - ap / n) < 1e-9, `${m.map_at_r} vs ${ap / n}`);
  assert.ok(m.map_at_r > 0.2 && m.map_at_r < 1);
});
