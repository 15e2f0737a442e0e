/** `MultiheadAttention` and its causal-mask helper. */
import type { Tensor } from '../torch/tensor.js';
import { full, zeros } from '../torch/creation.js';
import { scope } from '../torch/scope.js';
import type { Device, DType } from '../torch/dtype.js';
import * as F from '../torch/functional.js';
import { Module } from './module.js';
import { Parameter, emptyParameter, type FactoryOptions } from './parameter.js';
import { Linear } from './linear.js';
import * as init from './init.js';

/**
 * A [sz, sz] float mask with -inf above the diagonal and 0 elsewhere: position i may attend
 * to positions ≤ i only (PyTorch's `Transformer.generate_square_subsequent_mask`).
 */
export function generateSquareSubsequentMask(sz: number, o: { dtype?: DType; device?: Device } = {}): Tensor {
  return scope(() => full([sz, sz], -Infinity, { dtype: o.dtype ?? 'float32', device: o.device }).triu(1));
}

export interface MultiheadAttentionOptions extends FactoryOptions {
  /** Dropout on the attention weights in training mode. Default 0. */
  dropout?: number;
  /** Biases on the input and output projections. Default true. */
  bias?: boolean;
  /** Key/value feature sizes when they differ from embedDim (cross-attention). */
  kdim?: number;
  vdim?: number;
  /** Inputs and outputs are [N, L, E] instead of [L, N, E]. Default false, as PyTorch. */
  batchFirst?: boolean;
}

export interface MultiheadAttentionForwardOptions {
  /**
   * [N, S] (or [S] unbatched): true (bool) marks keys to ignore (padding); a float mask is added
   * to the attention scores.
   */
  keyPaddingMask?: Tensor | null;
  /** Return the attention weights too. Default true, as PyTorch. */
  needWeights?: boolean;
  /**
   * [L, S] or [N·numHeads, L, S]: true (bool) marks pairs that may not attend; a float mask is
   * added to the scores (use -inf to block, e.g. `generateSquareSubsequentMask(L)`).
   */
  attnMask?: Tensor | null;
  /** Average the returned weights over heads ([N, L, S]) rather than per head ([N, H, L, S]). Default true. */
  averageAttnWeights?: boolean;
  /** Apply a causal mask (query i sees keys ≤ i) when no `attnMask` is given. */
  isCausal?: boolean;
}

/**
 * Multi-head attention (Vaswani et al. 2017, "Attention is all you need"):
 * head_h = softmax(Q_h K_hᵀ / √d + mask) V_h with Q = query·W_qᵀ + b_q (likewise K, V),
 * d = embedDim / numHeads, output = concat(heads)·W_oᵀ + b_o.
 *
 * Shapes (batchFirst false, the default): query [L, N, E], key [S, N, kdim], value
 * [S, N, vdim] -> output [L, N, E]; batchFirst: [N, L, E] etc.; unbatched: [L, E].
 * Parameters under PyTorch's names: `in_proj_weight` [3E, E] (W_q, W_k, W_v stacked) and
 * `in_proj_bias` [3E], or `q_proj_weight`, `k_proj_weight`, `v_proj_weight` when kdim/vdim
 * differ from E; `out_proj.weight` [E, E] and `out_proj.bias` [E]. Initialised as PyTorch:
 * xavier-uniform in-projection, zero biases, Linear's default for out_proj.weight.
 */
export class MultiheadAttention extends Module {
  readonly embedDim: number;
  readonly kdim: number;
  readonly vdim: number;
  readonly numHeads: number;
  readonly headDim: number;
  /** Dropout probability on the attention weights (a number, as PyTorch's attribute). */
  readonly dropout: number;
  readonly batchFirst: boolean;
  readonly qkvSameEmbedDim: boolean;
  declare in_proj_weight: Parameter | null;
  declare q_proj_weight: Parameter | null;
  declare k_proj_weight: Parameter | null;
  declare v_proj_weight: Parameter | null;
  declare in_proj_bias: Parameter | null;
  declare out_proj: Linear;

  constructor(embedDim: number, numHeads: number, o: MultiheadAttentionOptions = {}) {
    super();
    if (!(embedDim > 0 && numHeads > 0)) throw new RangeError(`MultiheadAttention: embedDim (${embedDim}) and numHeads (${numHeads}) must be positive`);
    if (embedDim % numHeads !== 0) throw new RangeError(`MultiheadAttention: embedDim (${embedDim}) must be divisible by numHeads (${numHeads})`);
    this.embedDim = embedDim;
    this.kdim = o.kdim ?? embedDim;
    this.vdim = o.vdim ?? embedDim;
    this.numHeads = numHeads;
    this.headDim = embedDim / numHeads;
    this.dropout = o.dropout ?? 0;
    if (!(this.dropout >= 0 && this.dropout <= 1)) throw new RangeError(`MultiheadAttention: dropout must be in [0, 1], got ${this.dropout}`);
    this.batchFirst = o.batchFirst ?? false;
    this.qkvSameEmbedDim = this.kdim === embedDim && this.vdim === embedDim;
    const bias = o.bias ?? true;
    // registration order as PyTorch's: in_proj_weight, q/k/v_proj_weight, in_proj_bias, out_proj
    const same = this.qkvSameEmbedDim;
    this.registerParameter('in_proj_weight', same ? emptyParameter([3 * embedDim, embedDim], o) : null);
    this.registerParameter('q_proj_weight', same ? null : emptyParameter([embedDim, embedDim], o));
    this.registerParameter('k_proj_weight', same ? null : emptyParameter([embedDim, this.kdim], o));
    this.registerParameter('v_proj_weight', same ? null : emptyParameter([embedDim, this.vdim], o));
    this.registerParameter('in_proj_bias', bias ? emptyParameter([3 * embedDim], o) : null);
    this.registerModule('out_proj', new Linear(embedDim, embedDim, { bias, dtype: o.dtype, device: o.device }));
    this.resetParameters();
  }

  resetParameters(): void {
    if (this.in_proj_weight !== null) init.xavierUniform_(this.in_proj_weight);
    else for (const w of [this.q_proj_weight, this.k_proj_weight, this.v_proj_weight]) init.xavierUniform_(w!);
    if (this.in_proj_bias !== null) init.zeros_(this.in_proj_bias);
    if (this.out_proj.bias !== null) init.zeros_(this.out_proj.bias);
  }

  /**
   * Returns `[output, weights]`: output as the query's layout; weights [N, L, S] (averaged over
   * heads) or [N, H, L, S], unbatched without N, or null when `needWeights` is false. As in
   * PyTorch, the weights are taken after dropout.
   */
  forward(query: Tensor, key: Tensor, value: Tensor, o: MultiheadAttentionForwardOptions = {}): [Tensor, Tensor | null] {
    const res = scope(() => this.attend(query, key, value, o));
    return [res.out, res.weights];
  }

  private attend(query: Tensor, key: Tensor, value: Tensor, o: MultiheadAttentionForwardOptions): { out: Tensor; weights: Tensor | null } {
    const E = this.embedDim, H = this.numHeads, D = this.headDim;
    const batched = query.ndim === 3;
    if (!batched && query.ndim !== 2) throw new RangeError(`MultiheadAttention: query must be 3-d (batched) or 2-d (unbatched), got shape [${query.shape.join(', ')}]`);
    if (key.ndim !== query.ndim || value.ndim !== query.ndim) {
      throw new RangeError(`MultiheadAttention: query, key and value must have the same number of dimensions, got [${query.shape.join(', ')}], [${key.shape.join(', ')}], [${value.shape.join(', ')}]`);
    }
    // Everything below works batch-first: [N, L, E].
    const toNLE = (t: Tensor): Tensor => (!batched ? t.unsqueeze(0) : this.batchFirst ? t : t.transpose(0, 1));
    const q = toNLE(query), k = toNLE(key), v = toNLE(value);
    const [N, L, Eq] = q.shape as [number, number, number];
    const S = k.size(1);
    if (Eq !== E) throw new RangeError(`MultiheadAttention: expected query's last dimension to be embedDim ${E}, got ${Eq}`);
    if (k.size(-1) !== this.kdim || v.size(-1) !== this.vdim) {
      throw new RangeError(`MultiheadAttention: expected key/value feature sizes ${this.kdim}/${this.vdim}, got ${k.size(-1)}/${v.size(-1)}`);
    }
    if (k.size(0) !== N || v.size(0) !== N || v.size(1) !== S) {
      throw new RangeError(`MultiheadAttention: key and value must share the batch size and sequence length, got key [${key.shape.join(', ')}], value [${value.shape.join(', ')}]`);
    }

    // Input projections.
    const [bq, bk, bv] = this.in_proj_bias === null ? [null, null, null] : this.in_proj_bias.chunk(3);
    let qp: Tensor, kp: Tensor, vp: Tensor;
    if (this.in_proj_weight !== null) {
      if (query === key && key === value) {
        [qp, kp, vp] = F.linear(q, this.in_proj_weight, this.in_proj_bias).chunk(3, -1) as [Tensor, Tensor, Tensor];
      } else {
        const [wq, wk, wv] = this.in_proj_weight.chunk(3) as [Tensor, Tensor, Tensor];
        [qp, kp, vp] = [F.linear(q, wq, bq), F.linear(k, wk, bk), F.linear(v, wv, bv)];
      }
    } else {
      [qp, kp, vp] = [F.linear(q, this.q_proj_weight!, bq), F.linear(k, this.k_proj_weight!, bk), F.linear(v, this.v_proj_weight!, bv)];
    }
    const heads = (t: Tensor, len: number): Tensor => t.reshape(N, len, H, D).transpose(1, 2); // [N, H, len, D]
    const qh = heads(qp, L), kh = heads(kp, S), vh = heads(vp, S);

    // Scores [N, H, L, S] and the additive mask.
    let scores = qh.mul(1 / Math.sqrt(D)).matmul(kh.transpose(-2, -1));
    const additive = (m: Tensor): Tensor => (m.dtype === 'bool' ? zeros(m.shape, { dtype: scores.dtype, device: m.device }).maskedFill(m, -Infinity) : m);
    let attnMask = o.attnMask ?? null;
    if (attnMask === null && o.isCausal) attnMask = zeros([L, S], { dtype: 'bool', device: q.device }).logicalNot().triu(1);
    if (attnMask !== null) {
      let m = additive(attnMask);
      if (m.ndim === 2) {
        if (m.size(0) !== L || m.size(1) !== S) throw new RangeError(`MultiheadAttention: the 2-d attnMask should be [${L}, ${S}], got [${m.shape.join(', ')}]`);
      } else if (m.ndim === 3) {
        if (m.size(0) !== N * H || m.size(1) !== L || m.size(2) !== S) {
          throw new RangeError(`MultiheadAttention: the 3-d attnMask should be [${N * H}, ${L}, ${S}], got [${m.shape.join(', ')}]`);
        }
        m = m.view(N, H, L, S);
      } else {
        throw new RangeError(`MultiheadAttention: attnMask must be 2-d or 3-d, got shape [${m.shape.join(', ')}]`);
      }
      scores = scores.add(m);
    }
    if (o.keyPaddingMask != null) {
      let kpm = additive(o.keyPaddingMask);
      if (!batched) kpm = kpm.unsqueeze(0);
      if (kpm.ndim !== 2 || kpm.size(0) !== N || kpm.size(1) !== S) {
        throw new RangeError(`MultiheadAttention: keyPaddingMask should be [${N}, ${S}]${batched ? '' : ` (or [${S}] unbatched)`}, got [${o.keyPaddingMask.shape.join(', ')}]`);
      }
      scores = scores.add(kpm.view(N, 1, 1, S));
    }

    let attn = F.softmax(scores, -1);
    if (this.training && this.dropout > 0) attn = F.dropout(attn, { p: this.dropout, training: true });
    const ctx = attn.matmul(vh).transpose(1, 2).reshape(N, L, E);
    let out = this.out_proj.forward(ctx);
    out = !batched ? out.squeeze(0) : this.batchFirst ? out : out.transpose(0, 1);

    let weights: Tensor | null = null;
    if (o.needWeights ?? true) {
      weights = (o.averageAttnWeights ?? true) ? attn.mean(1) : attn;
      if (!batched) weights = weights.squeeze(0);
    }
    return { out, weights };
  }

  override extraRepr(): string {
    return `embed_dim=${this.embedDim}, num_heads=${this.numHeads}, dropout=${this.dropout}, batch_first=${this.batchFirst ? 'True' : 'False'}`;
  }
}
