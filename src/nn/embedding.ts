/** `Embedding`. */
import type { Tensor } from '../torch/tensor.js';
import { noGrad } from '../torch/autograd.js';
import * as F from '../torch/functional.js';
import { Module } from './module.js';
import { Parameter, emptyParameter, type FactoryOptions } from './parameter.js';
import * as init from './init.js';

/**
 * A lookup table: integer indices of any shape [...] give vectors [..., embeddingDim].
 * `weight` [numEmbeddings, embeddingDim] starts N(0, 1), as PyTorch; the `paddingIdx` row
 * starts at zero and gets no gradient.
 */
export class Embedding extends Module {
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  readonly paddingIdx: number | null;
  declare weight: Parameter;

  constructor(numEmbeddings: number, embeddingDim: number, o: { paddingIdx?: number | null; weight?: Tensor } & FactoryOptions = {}) {
    super();
    this.numEmbeddings = numEmbeddings;
    this.embeddingDim = embeddingDim;
    let pi = o.paddingIdx ?? null;
    if (pi !== null) {
      if (!(pi < numEmbeddings && pi >= -numEmbeddings)) throw new RangeError(`Embedding: paddingIdx ${pi} must be within the ${numEmbeddings} embeddings`);
      if (pi < 0) pi += numEmbeddings;
    }
    this.paddingIdx = pi;
    if (o.weight !== undefined) {
      const s = o.weight.shape;
      if (s.length !== 2 || s[0] !== numEmbeddings || s[1] !== embeddingDim) {
        throw new RangeError(`Embedding: weight must have shape [${numEmbeddings}, ${embeddingDim}], got [${s.join(', ')}]`);
      }
      this.registerParameter('weight', new Parameter(o.weight));
    } else {
      this.registerParameter('weight', emptyParameter([numEmbeddings, embeddingDim], o));
      this.resetParameters();
    }
  }

  /** An embedding over `embeddings` [num, dim] (shared storage), frozen unless `freeze: false`. */
  static fromPretrained(embeddings: Tensor, o: { freeze?: boolean; paddingIdx?: number | null } = {}): Embedding {
    if (embeddings.ndim !== 2) throw new RangeError(`Embedding.fromPretrained: embeddings must be 2-d, got shape [${embeddings.shape.join(', ')}]`);
    const [n, d] = embeddings.shape as [number, number];
    const e = new Embedding(n, d, { weight: embeddings, paddingIdx: o.paddingIdx });
    e.weight.requiresGrad_(!(o.freeze ?? true));
    return e;
  }

  resetParameters(): void {
    init.normal_(this.weight);
    if (this.paddingIdx !== null) {
      const row = this.weight.select(0, this.paddingIdx);
      noGrad(() => row.zero_());
      row.dispose();
    }
  }

  /** input: integer tensor [...] -> [..., embeddingDim]. */
  forward(input: Tensor): Tensor {
    return F.embedding(input, this.weight, { paddingIdx: this.paddingIdx });
  }
  override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}${this.paddingIdx !== null ? `, padding_idx=${this.paddingIdx}` : ''}`;
  }
}
