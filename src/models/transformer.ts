/**
 * A pre-LN transformer encoder (Vaswani et al. 2017; pre-LN as in ViT, Dosovitskiy et al.
 * 2021, and CLIP, Radford et al. 2021) with Hugging Face CLIP's parameter names, so that the
 * ViT backbone and both CLIP towers share it and HF checkpoints load 1:1:
 *   layers.N.self_attn.{q,k,v,out}_proj, layers.N.layer_norm1, layers.N.mlp.fc1/fc2, layers.N.layer_norm2
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

const F = torch.functional;
const { scope } = torch;
export type Activation = 'gelu' | 'quick_gelu' | 'gelu_new' | 'relu';

export function activate(x: Tensor, act: Activation): Tensor {
  switch (act) {
    case 'gelu': return F.gelu(x);
    case 'gelu_new': return F.gelu(x, { approximate: 'tanh' });
    case 'quick_gelu': return F.quickGelu(x);
    case 'relu': return x.relu();
    default: throw new RangeError(`unknown activation '${String(act)}': use gelu, quick_gelu, gelu_new or relu`);
  }
}

export interface TransformerOptions {
  dim: number;
  depth: number;
  heads: number;
  /** Hidden size of the MLP (default 4·dim). */
  mlpDim?: number;
  activation?: Activation;
  layerNormEps?: number;
  dropout?: number;
}

/** Multi-head self-attention with separate q/k/v projections (HF CLIPAttention). x: [N, L, dim]. */
export class SelfAttention extends nn.Module {
  q_proj: nn.Linear;
  k_proj: nn.Linear;
  v_proj: nn.Linear;
  out_proj: nn.Linear;
  constructor(readonly dim: number, readonly heads: number, readonly dropoutP = 0) {
    super();
    if (dim % heads !== 0) throw new RangeError(`SelfAttention: dim ${dim} is not divisible by heads ${heads}`);
    this.q_proj = new nn.Linear(dim, dim);
    this.k_proj = new nn.Linear(dim, dim);
    this.v_proj = new nn.Linear(dim, dim);
    this.out_proj = new nn.Linear(dim, dim);
  }
  /**
   * `mask`: additive [L, L] or [N, 1, L, L] (−∞ where attention is not allowed). `queries`
   * [N, Q, dim] (optional): compute the output for these query rows only (keys and values
   * still come from all of `x`); the mask is then [Q, L] or [N, 1, Q, L]. Output [N, Q, dim].
   */
  forward(x: Tensor, mask: Tensor | null = null, queries: Tensor | null = null): Tensor {
    return scope(() => {
      const [n, l] = x.shape as [number, number, number];
      const lq = queries === null ? l : queries.size(1);
      const split = (t: Tensor, len: number): Tensor => t.view(n, len, this.heads, this.dim / this.heads).transpose(1, 2); // [N, h, len, d]
      // one GEMM for the projections that read the same input (q, k, v, or k, v): the same values
      // as the three Linear layers, ~2% faster per layer; autograd splits the gradient back
      const [q, k, v] = queries === null ? this.project(x, [this.q_proj, this.k_proj, this.v_proj])
        : [this.q_proj.forward(queries), ...this.project(x, [this.k_proj, this.v_proj])];
      const o = F.scaledDotProductAttention(split(q!, lq), split(k!, l), split(v!, l),
        { attnMask: mask, dropoutP: this.dropoutP, training: this.training });
      // intermediates are freed as soon as they are used (autograd keeps what it needs), which
      // keeps the live native memory of a layer low
      for (const t of [q!, k!, v!]) t.dispose();
      const merged = o.transpose(1, 2).reshape([n, lq, this.dim]);
      o.dispose();
      return this.out_proj.forward(merged);
    });
  }

  private project(x: Tensor, layers: nn.Linear[]): Tensor[] {
    const w = torch.cat(layers.map((m) => m.weight), 0);
    const b = layers.every((m) => m.bias !== null) ? torch.cat(layers.map((m) => m.bias!), 0) : null;
    if (b === null) return layers.map((m) => m.forward(x));
    return F.linear(x, w, b).chunk(layers.length, -1);
  }
}

export class TransformerMLP extends nn.Module {
  fc1: nn.Linear;
  fc2: nn.Linear;
  constructor(dim: number, hidden: number, readonly activation: Activation = 'gelu') {
    super();
    this.fc1 = new nn.Linear(dim, hidden);
    this.fc2 = new nn.Linear(hidden, dim);
  }
  forward(x: Tensor): Tensor {
    const h = this.fc1.forward(x);
    const a = activate(h, this.activation);
    h.dispose();
    const out = this.fc2.forward(a);
    a.dispose();
    return out;
  }
}

/** x + attn(LN(x)), then x + mlp(LN(x)). */
export class TransformerEncoderLayer extends nn.Module {
  self_attn: SelfAttention;
  layer_norm1: nn.LayerNorm;
  mlp: TransformerMLP;
  layer_norm2: nn.LayerNorm;
  constructor(o: TransformerOptions) {
    super();
    const eps = o.layerNormEps ?? 1e-5;
    this.self_attn = new SelfAttention(o.dim, o.heads, o.dropout ?? 0);
    this.layer_norm1 = new nn.LayerNorm([o.dim], { eps });
    this.mlp = new TransformerMLP(o.dim, o.mlpDim ?? 4 * o.dim, o.activation ?? 'gelu');
    this.layer_norm2 = new nn.LayerNorm([o.dim], { eps });
  }
  forward(x: Tensor, mask: Tensor | null = null): Tensor {
    return scope(() => {
      const h = x.add(this.attend(this.layer_norm1.forward(x), mask, null));
      return h.add(this.feedForward(h));
    });
  }

  /** self_attn on normed inputs `nx` (freed after use). */
  private attend(nx: Tensor, mask: Tensor | null, queries: Tensor | null): Tensor {
    const a = this.self_attn.forward(nx, mask, queries);
    nx.dispose();
    queries?.dispose();
    return a;
  }

  /** mlp(layer_norm2(h)), freeing the normed input after use. */
  private feedForward(h: Tensor): Tensor {
    const n2 = this.layer_norm2.forward(h);
    const m = this.mlp.forward(n2);
    n2.dispose();
    return m;
  }

  /**
   * The outputs at selected positions only: `select` maps [N, L, dim] to the rows wanted,
   * [N, Q, dim] (e.g. the class token, or each sequence's end-of-text token); `mask` is for those
   * query rows ([Q, L] or [N, 1, Q, L]). Exactly the matching rows of `forward`, for a fraction
   * of the cost when Q ≪ L.
   */
  forwardRows(x: Tensor, select: (t: Tensor) => Tensor, mask: Tensor | null = null): Tensor {
    return scope(() => {
      const nx = this.layer_norm1.forward(x);
      const h = select(x).add(this.attend(nx, mask, select(nx)));
      return h.add(this.feedForward(h));
    });
  }
}

/** A stack of encoder layers (`layers.N`). x: [N, L, dim] → [N, L, dim]. */
export class TransformerEncoder extends nn.Module {
  layers: nn.ModuleList;
  constructor(o: TransformerOptions) {
    super();
    const layers: nn.Module[] = [];
    for (let i = 0; i < o.depth; i++) layers.push(new TransformerEncoderLayer(o));
    this.layers = new nn.ModuleList(layers);
  }
  forward(x: Tensor, mask: Tensor | null = null): Tensor {
    let h = x;
    for (const layer of this.layers) {
      const next = (layer as TransformerEncoderLayer).forward(h, mask);
      if (h !== x) h.dispose();
      h = next;
    }
    return h;
  }

  /**
   * The final outputs at selected positions only ([N, Q, dim]): every layer but the last runs on
   * all tokens with `mask`; the last computes only the rows `select` picks (its queries), with
   * `lastMask` ([Q, L] or [N, 1, Q, L]). Pooled models (a class token, an end-of-text token) need
   * nothing else, and skip most of the last layer.
   */
  forwardRows(x: Tensor, select: (t: Tensor) => Tensor, mask: Tensor | null = null, lastMask: Tensor | null = null): Tensor {
    const layers = [...this.layers] as TransformerEncoderLayer[];
    if (layers.length === 0) return select(x);
    return scope(() => {
      let h = x;
      for (const layer of layers.slice(0, -1)) {
        const next = layer.forward(h, mask);
        if (h !== x) h.dispose();
        h = next;
      }
      return layers[layers.length - 1]!.forwardRows(h, select, lastMask);
    });
  }
}

/** An additive causal mask [L, L]: 0 on and below the diagonal, −∞ above. */
export function causalMask(l: number, device: torch.Device = 'cpu'): Tensor {
  return torch.scope(() => torch.full([l, l], -Infinity, { device }).triu(1));
}
