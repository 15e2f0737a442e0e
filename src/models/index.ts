/** Backbones and heads. `createBackbone` builds one by name, as the CLI and checkpoints name them. */
import { ResNet, type ResNetOptions } from './resnet.js';
import { VisionTransformer, type ViTOptions } from './vit.js';
import type { ScriptModule } from '../nn/index.js';
import { loadTorchScriptBackbone } from './torchscript.js';

export * from './resnet.js';
export * from './vit.js';
export * from './heads.js';
export * from './ssl_heads.js';
export * from './decoder.js';
export * from './transformer.js';
export * from './torchscript.js';

export interface BackboneSpec {
  name: 'resnet18' | 'resnet34' | 'resnet50' | 'vit-tiny' | 'vit-small' | 'torchscript';
  inChannels: number;
  imageSize: number;
  /** ResNet: first-stage channels; ViT: embedding width (0 = the size's default). */
  width?: number;
  stem?: ResNetOptions['stem'];
  patchSize?: number;
  /** ResNet only: what `forward` pools (see `ResNetOptions`; default: the last stage, globally). */
  featureStages?: number;
  featureGrid?: number;
  /** 'torchscript' only (`TorchScriptBackboneSpec`): the .pt file, its sha256 (checked when given), its output size (probed when absent). */
  file?: string;
  sha256?: string;
  featureDim?: number;
}

export function createBackbone(spec: BackboneSpec): ResNet | VisionTransformer | ScriptModule {
  switch (spec.name) {
    case 'torchscript':
      return loadTorchScriptBackbone(spec);
    case 'resnet18': case 'resnet34': case 'resnet50':
      return new ResNet({ depth: Number(spec.name.slice(6)) as 18 | 34 | 50, inChannels: spec.inChannels, width: spec.width || 64,
        stem: spec.stem ?? (spec.imageSize <= 64 ? 'cifar' : 'imagenet'), featureStages: spec.featureStages, featureGrid: spec.featureGrid });
    case 'vit-tiny': case 'vit-small': {
      if ((spec.featureStages ?? 1) !== 1 || (spec.featureGrid ?? 1) !== 1) {
        throw new RangeError(`${spec.name}: featureStages / featureGrid pool a ResNet's conv maps; a ViT returns its [CLS] token (leave them at 1, or use a resnet backbone)`);
      }
      const small = spec.name === 'vit-small';
      const patch = spec.patchSize ?? (spec.imageSize <= 64 ? 4 : 16);
      const o: ViTOptions = { imageSize: spec.imageSize, patchSize: patch, inChannels: spec.inChannels,
        dim: spec.width || (small ? 384 : 192), depth: 12, heads: small ? 6 : 3 };
      return new VisionTransformer(o);
    }
    default:
      throw new RangeError(`unknown backbone '${String(spec.name)}': use resnet18, resnet34, resnet50, vit-tiny or vit-small (or a TorchScript model: --backbone-from model.pt)`);
  }
}
export * from './torchvision.js';
