/**
 * CLIP's text tower, laid out as Hugging Face's `CLIPTextTransformer`:
 *   embeddings.token_embedding, embeddings.position_embedding, encoder.layers.N..., final_layer_norm
 *
 * A causal (GPT-style) pre-LN transformer over BPE ids (Radford et al. 2021, §2.4): position i
 * attends to positions ≤ i only. The sequence feature is the final-layer-normed activation at
 * the end-of-text token.
 */
import * as nn from '../../nn/index.js';
import * as torch from '../../torch/index.js';
import type { Tensor } from '../../torch/index.js';
import { TransformerEncoder } from '../transformer.js';
import type { CLIPTextConfig } from './config.js';

/** Largest finite float32: HF's additive padding mask value (finite, so a fully masked row stays finite). */
const MASK_MIN = -3.4028234663852886e38;

export class CLIPTextEmbeddings extends nn.Module {
  token_embedding: nn.Embedding;
  position_embedding: nn.Embedding;
  constructor(c: CLIPTextConfig) {
    super();
    this.token_embedding = new nn.Embedding(c.vocab_size, c.hidden_size);
    this.position_embedding = new nn.Embedding(c.max_position_embeddings, c.hidden_size);
    torch.noGrad(() => {
      // HF's initialisation: N(0, 0.02) for both tables
      this.token_embedding.weight.normal_(0, 0.02);
      this.position_embedding.weight.normal_(0, 0.02);
    });
  }
  /** ids [N, L] → [N, L, dim]. */
  forward(ids: Tensor): Tensor {
    return torch.scope(() => this.token_embedding.forward(ids).add(this.position_embedding.weight.narrow(0, 0, ids.size(1))));
  }
}

export interface TextOutput {
  /** After `final_layer_norm`: [N, L, dim]. */
  lastHiddenState: Tensor;
  /** The end-of-text token's row of `lastHiddenState`: [N, dim]. */
  pooledOutput: Tensor;
}

export class CLIPTextTransformer extends nn.Module {
  readonly config: CLIPTextConfig;
  embeddings: CLIPTextEmbeddings;
  encoder: TransformerEncoder;
  final_layer_norm: nn.LayerNorm;

  constructor(c: CLIPTextConfig) {
    super();
    this.config = c;
    this.embeddings = new CLIPTextEmbeddings(c);
    this.encoder = new TransformerEncoder({
      dim: c.hidden_size, depth: c.num_hidden_layers, heads: c.num_attention_heads, mlpDim: c.intermediate_size,
      activation: c.hidden_act, layerNormEps: c.layer_norm_eps,
    });
    this.final_layer_norm = new nn.LayerNorm([c.hidden_size], { eps: c.layer_norm_eps });
  }

  /**
   * Where each row is pooled: HF's rule. Legacy configs (eos_token_id 2, while the real
   * end-of-text id 49407 is the largest id) pool at the argmax of the ids; otherwise at the
   * first position holding eos_token_id (position 0 when a row has none, as HF).
   */
  eosPositions(inputIds: Tensor): Tensor {
    return torch.scope(() => {
      const ids = inputIds.to('int64');
      if (this.config.eos_token_id === 2) return ids.argmax(-1);
      return ids.eq(this.config.eos_token_id).to('int32').argmax(-1);
    });
  }

  /**
   * The pooled features only, [N, dim] (= `forward(...).pooledOutput`, computed for less): as
   * attention is causal, the tokens after the last pooled position never reach a pooled row, so
   * the batch is cut there, and the last layer computes only the pooled rows.
   */
  pooled(inputIds: Tensor, attentionMask: Tensor | null = null): Tensor {
    const [n, l] = this.check(inputIds, attentionMask);
    return torch.scope(() => {
      const pos = this.eosPositions(inputIds);
      const len = Math.min(l, pos.max().item() + 1);
      const ids = len < l ? inputIds.narrow(1, 0, len) : inputIds;
      const am = attentionMask !== null && len < l ? attentionMask.narrow(1, 0, len) : attentionMask;
      const h = this.embeddings.forward(ids);
      const dev = { device: h.device };
      let mask = torch.full([len, len], -Infinity, dev).triu(1); // causal, [L, L]
      // the pooled row of sequence i may attend to keys j ≤ pos_i: [N, 1, 1, L]
      let lastMask = torch.zeros([n, 1, 1, len], dev).maskedFill(torch.arange(0, len, 1, dev).view(1, 1, 1, len).gt(pos.view(n, 1, 1, 1)), -Infinity);
      if (am !== null) {
        const pad = torch.zeros([n, 1, 1, len], dev).maskedFill(am.eq(0).view(n, 1, 1, len), MASK_MIN);
        mask = pad.add(mask);
        lastMask = lastMask.add(pad);
      }
      const rows = torch.arange(0, n, 1, dev);
      const out = this.encoder.forwardRows(h, (t) => t.index([rows, pos]).unsqueeze(1), mask, lastMask).squeeze(1);
      return this.final_layer_norm.forward(out);
    });
  }

  private check(inputIds: Tensor, attentionMask: Tensor | null): [number, number] {
    const s = inputIds.shape;
    if (s.length !== 2) throw new RangeError(`CLIPTextTransformer: inputIds must be [N, L], got [${s.join(', ')}]`);
    if (inputIds.dtype !== 'int64' && inputIds.dtype !== 'int32') throw new TypeError(`CLIPTextTransformer: inputIds must be an integer tensor (int64), got ${inputIds.dtype}`);
    const [n, l] = s as [number, number];
    const max = this.config.max_position_embeddings;
    if (l > max) throw new RangeError(`CLIPTextTransformer: sequences of ${l} tokens are longer than the model's context length ${max}; tokenize with contextLength ${max}`);
    if (attentionMask !== null && (attentionMask.ndim !== 2 || attentionMask.size(0) !== n || attentionMask.size(1) !== l)) {
      throw new RangeError(`CLIPTextTransformer: attentionMask must be [${n}, ${l}] like inputIds, got [${attentionMask.shape.join(', ')}]`);
    }
    return [n, l];
  }

  /**
   * `inputIds` [N, L] (int64, L ≤ max_position_embeddings); `attentionMask` [N, L] (1 = token,
   * 0 = padding) is optional: padding after the end-of-text token never reaches the pooled
   * output through the causal mask, so the mask only matters for left padding.
   */
  forward(inputIds: Tensor, attentionMask: Tensor | null = null): TextOutput {
    const [n, l] = this.check(inputIds, attentionMask);
    return torch.scope(() => {
      const h = this.embeddings.forward(inputIds);
      let mask = torch.full([l, l], -Infinity, { device: h.device }).triu(1); // causal, [L, L]
      if (attentionMask !== null) {
        const pad = attentionMask.eq(0).view(n, 1, 1, l);
        mask = torch.zeros([n, 1, 1, l], { device: h.device }).maskedFill(pad, MASK_MIN).add(mask); // [N, 1, L, L]
      }
      const last = this.final_layer_norm.forward(this.encoder.forward(h, mask));
      const pooled = last.index([torch.arange(n, undefined, 1, { device: h.device }), this.eosPositions(inputIds)]);
      return { lastHiddenState: last, pooledOutput: pooled };
    });
  }
}
