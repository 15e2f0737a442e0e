/**
 * torchvision's ImageNet classifiers, name for name: `TorchvisionResNet` is dyad's `ResNet`
 * (7×7/2 stem, 3×3/2 max-pool, global average pool) with torchvision's `fc` head, so the state
 * dict of `torchvision.models.resnet18()` (and 34, 50) loads strictly, every key by its name
 * (`conv1.weight`, `layer1.0.bn1.running_mean`, `fc.bias`, ...), and gives torchvision's logits.
 *
 * forward(x [N, 3, H, W]) → logits [N, numClasses]; features(x) → [N, 512·expansion].
 */
import * as nn from '../nn/index.js';
import type { Tensor } from '../torch/index.js';
import { ResNet, type ResNetOptions } from './resnet.js';

export type TorchvisionArch = 'resnet18' | 'resnet34' | 'resnet50';
export const TORCHVISION_ARCHS: readonly TorchvisionArch[] = ['resnet18', 'resnet34', 'resnet50'];

export class TorchvisionResNet extends ResNet {
  fc: nn.Linear;
  readonly arch: TorchvisionArch;

  constructor(arch: TorchvisionArch = 'resnet18', o: { numClasses?: number } & Pick<ResNetOptions, 'inChannels' | 'width'> = {}) {
    if (!TORCHVISION_ARCHS.includes(arch)) throw new RangeError(`TorchvisionResNet: arch must be one of ${TORCHVISION_ARCHS.join(', ')}, got '${String(arch)}'`);
    super({ depth: Number(arch.slice(6)) as 18 | 34 | 50, stem: 'imagenet', width: o.width ?? 64, inChannels: o.inChannels ?? 3 });
    this.arch = arch;
    this.fc = new nn.Linear(this.featureDim, o.numClasses ?? 1000);
  }

  get numClasses(): number {
    return this.fc.outFeatures;
  }

  /** Pooled features [N, featureDim] (what `fc` reads). */
  features(x: Tensor): Tensor {
    return super.forward(x);
  }

  /** Logits [N, numClasses]. */
  override forward(x: Tensor): Tensor {
    const f = super.forward(x);
    const y = this.fc.forward(f);
    f.dispose();
    return y;
  }
}
