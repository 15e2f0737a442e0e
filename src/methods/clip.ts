/**
 * CLIP training (Radford et al. 2021, "Learning Transferable Visual Models From Natural Language
 * Supervision"): an image tower and a text tower, each with a linear projection into a joint
 * space, trained with the symmetric InfoNCE loss over the N × N image–text similarities of a
 * batch (`CLIPLoss`), with a learnable temperature (`logit_scale`, clipped at 100).
 *
 * With `freezeVision` the image tower is locked and stays in eval mode (LiT, Zhai et al. 2022,
 * "LiT: Zero-Shot Transfer with Locked-image text Tuning"): only the text tower, the two
 * projections and the temperature learn, so a pretrained dyad self-supervised encoder gains a
 * text interface. Its features are computed without autograd.
 *
 * The state to checkpoint is `method.model` (HF names); the loss has none.
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { CLIPLoss } from '../losses/clip.js';
import type { CLIPModel } from '../models/clip/model.js';
import { Method, type StepContext } from './method.js';

export interface CLIPBatch {
  /** Preprocessed images [N, C, H, W]. */
  pixelValues: Tensor;
  /** Caption token ids [N, L] (int64). */
  inputIds: Tensor;
  attentionMask?: Tensor | null;
}

export interface CLIPMethodOptions {
  /** Lock the image tower (LiT). Default false. */
  freezeVision?: boolean;
  /** Largest exp(logit_scale); default 100, as the paper. */
  maxLogitScale?: number;
}

export class CLIP extends Method<CLIPBatch> {
  readonly methodName = 'clip';
  model: CLIPModel;
  readonly criterion: CLIPLoss;
  readonly freezeVision: boolean;

  constructor(model: CLIPModel, opts: CLIPMethodOptions = {}) {
    super();
    this.model = model;
    this.criterion = new CLIPLoss({ maxLogitScale: opts.maxLogitScale });
    this.freezeVision = opts.freezeVision ?? false;
    if (this.freezeVision) model.vision_model.requiresGrad_(false);
    this.criterion.clampLogitScale_(model.logit_scale);
  }

  /** Training mode everywhere except a locked image tower, which stays in eval mode (its batch-norm statistics are fixed). */
  override train(mode = true): this {
    super.train(mode);
    if (this.freezeVision) this.model.vision_model.eval();
    return this;
  }

  /** Image embeddings [N, projection_dim] (not normalised); a locked tower runs without autograd. */
  imageEmbeds(pixelValues: Tensor): Tensor {
    return torch.scope(() => {
      const m = this.model;
      const f = this.freezeVision ? torch.noGrad(() => m.vision_model.forward(pixelValues)) : m.vision_model.forward(pixelValues);
      return m.visual_projection.forward(f);
    });
  }

  /** The symmetric InfoNCE loss of one batch of matching pairs. */
  trainingStep(batch: CLIPBatch, _ctx?: StepContext): Tensor {
    const n = batch.pixelValues.size(0);
    if (batch.inputIds.size(0) !== n) throw new RangeError(`CLIP.trainingStep: ${n} images but ${batch.inputIds.size(0)} captions`);
    return torch.scope(() => {
      const img = this.imageEmbeds(batch.pixelValues);
      const txt = this.model.getTextFeatures(batch.inputIds, batch.attentionMask ?? null);
      return this.criterion.forward(img, txt, this.model.logit_scale);
    });
  }

  /** After each optimizer step: clip logit_scale to [0, ln 100]. */
  override afterStep(_ctx?: StepContext): void {
    this.criterion.clampLogitScale_(this.model.logit_scale);
    this.model.resetIdentity();
  }

  /** Parameters the optimizer trains, named as in the CLIPModel (a locked image tower's are left out). */
  override trainableParameters(): [string, nn.Parameter][] {
    return this.model.namedParameters().filter(([, p]) => p.requiresGrad);
  }

  forward(batch: CLIPBatch): Tensor {
    return this.trainingStep(batch);
  }
}
