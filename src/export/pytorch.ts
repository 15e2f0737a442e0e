/**
 * PyTorch checkpoints in (the `torch.load` side of src/export/): torchvision models from their
 * `.pth` state dicts, and `torch.save` files to safetensors. Reading the file is the tensor
 * layer's `torch.load` (src/torch/torch_load.ts, restricted unpickler); this file maps what it
 * holds onto dyad's models.
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Classifier } from '../models/classifier.js';
import { ResNet } from '../models/resnet.js';
import { TorchvisionResNet, TORCHVISION_ARCHS, type TorchvisionArch } from '../models/torchvision.js';
import type { ModelInputConfig } from '../engine/classify.js';
import { IMAGENET_STATS } from '../transforms/normalize.js';

/** Prefixes that wrappers add to every key (DataParallel's `module.`, Lightning's `model.`). */
function stripPrefix(sd: Map<string, Tensor>): Map<string, Tensor> {
  for (const p of ['module.', 'model.']) {
    if (sd.size > 0 && [...sd.keys()].every((k) => k.startsWith(p))) return new Map([...sd].map(([k, v]) => [k.slice(p.length), v]));
  }
  return sd;
}

/**
 * A torchvision ResNet (`resnet18`, `resnet34`, `resnet50`) with the weights of a `torch.save`d
 * state dict (`.pth`, `.pt`, `.bin`), loaded strictly by name: every key of torchvision's
 * model must be there, and no other. The number of classes is read from `fc.weight`.
 * Returns the model in eval mode; the file's tensors are freed.
 */
export function loadTorchvisionResNet(path: string, arch: TorchvisionArch = 'resnet18'): TorchvisionResNet {
  if (!TORCHVISION_ARCHS.includes(arch)) throw new RangeError(`loadTorchvisionResNet: arch must be one of ${TORCHVISION_ARCHS.join(', ')}, got '${String(arch)}'`);
  return torch.scope(() => {
    const sd = stripPrefix(torch.loadStateDict(path));
    const fc = sd.get('fc.weight');
    const conv1 = sd.get('conv1.weight');
    const model = new TorchvisionResNet(arch, {
      ...(fc && { numClasses: fc.size(0) }),
      ...(conv1 && { inChannels: conv1.size(1), width: conv1.size(0) }),
    });
    try {
      model.loadStateDict(sd);
    } catch (e) {
      model.dispose();
      throw e;
    }
    model.eval();
    return model;
  }) as TorchvisionResNet;
}

/**
 * The same network as dyad's `Classifier` (`backbone.*` = a `ResNet` with the ImageNet stem,
 * `head` = torchvision's `fc`), the model behind a classifier checkpoint: what `Model.load`
 * wraps. The weights are copied; `model` is left as it was.
 */
export function torchvisionToClassifier(model: TorchvisionResNet): Classifier {
  const { depth, width, inChannels } = model.config;
  const c = new Classifier(new ResNet({ depth, width, inChannels, stem: 'imagenet' }), model.numClasses);
  torch.scope(() => {
    const sd = new Map<string, Tensor>();
    for (const [k, v] of model.stateDict()) sd.set(k.startsWith('fc.') ? `head.${k.slice(3)}` : `backbone.${k}`, v);
    c.loadStateDict(sd);
  });
  if (!model.training) c.eval();
  return c;
}

/**
 * Converts a `torch.save` state dict to safetensors (names and dtypes kept; the wrapper
 * prefixes `module.`/`model.` kept too). Returns the number of tensors written.
 */
export function convertToSafetensors(src: string, dst: string, o: { key?: string } = {}): number {
  return torch.scope(() => {
    const sd = torch.loadStateDict(src, o);
    // safetensors stores each tensor's own bytes: shared storages are written once per tensor
    torch.saveFile(sd, dst, { format: 'pt', source: 'torch.load' });
    return sd.size;
  });
}

/**
 * What `Model.load('resnet18.pth', { arch })` needs to wrap a torchvision state dict as a dyad
 * classifier checkpoint: the `Classifier` (eval mode), the checkpoint config (ImageNet stem,
 * 224 px, ImageNet mean/std: torchvision's pretrained weights expect them) and class names (`names` if given, else '0'..'N−1').
 */
export function loadTorchvisionClassifier(path: string, arch: TorchvisionArch = 'resnet18', o: { names?: string[]; imageSize?: number } = {}): {
  classifier: Classifier;
  config: ModelInputConfig;
  names: string[];
} {
  const tv = loadTorchvisionResNet(path, arch);
  try {
    const classifier = torchvisionToClassifier(tv);
    const names = o.names ?? Array.from({ length: classifier.numClasses }, (_, i) => String(i));
    if (names.length !== classifier.numClasses) {
      classifier.dispose();
      throw new RangeError(`loadTorchvisionClassifier: ${names.length} names for the ${classifier.numClasses} classes of ${path}`);
    }
    const { width, inChannels } = tv.config;
    if (inChannels !== 1 && inChannels !== 3) throw new RangeError(`loadTorchvisionClassifier: ${path} has ${inChannels} input channels; dyad checkpoints read 1 or 3`);
    const config: ModelInputConfig = { backbone: arch, width, imageSize: o.imageSize ?? 224, stem: 'imagenet', channels: inChannels, mean: IMAGENET_STATS.mean.slice(0, inChannels), std: IMAGENET_STATS.std.slice(0, inChannels) };
    return { classifier, config, names };
  } finally {
    tv.dispose();
  }
}
