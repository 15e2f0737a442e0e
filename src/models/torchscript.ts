/**
 * A TorchScript model (`torch.jit.trace(model, x).save('model.pt')`) as a dyad backbone: the
 * backbone kind 'torchscript' of `BackboneSpec`, built by `createBackbone`.
 *
 * A checkpoint of a model built on such a backbone (a probe or fine-tune classifier, a
 * self-supervised run with `--backbone-from`) stores the backbone's weights under its PyTorch
 * names, as for any backbone, and in its config the .pt file (absolute path) and its sha256.
 * Rebuilding re-reads that .pt (for the graph) and then loads the checkpoint's weights into it;
 * a missing or changed .pt is an error that names the file and the fix.
 *
 * forward(x [N, C, H, W]) → the TorchScript output [N, featureDim] (its last size, found by one
 * forward of a zero input [1, C, imageSize, imageSize] unless the spec gives it).
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileSha256 } from '../torch/io.js';
import { ScriptModule, TorchScriptError, isTorchScriptFile } from '../nn/index.js';

/** What a TorchScript backbone is rebuilt from (the 'torchscript' part of a `BackboneSpec`). */
export interface TorchScriptBackboneSpec {
  /** The .pt file. */
  file?: string;
  /** Its sha256 when the model was built on it (checked when given). */
  sha256?: string;
  inChannels: number;
  imageSize: number;
  /** The output size; absent: found by a forward of a zero image. */
  featureDim?: number;
  featureStages?: number;
  featureGrid?: number;
}

/**
 * The absolute path and sha256 of a TorchScript file to build on.
 * @throws TorchScriptError naming the file when it is missing or not a TorchScript archive.
 */
export function torchScriptFileIdentity(file: string, what = '--backbone-from'): { file: string; sha256: string } {
  const abs = path.resolve(file);
  if (!existsSync(abs) || !statSync(abs).isFile()) {
    throw new TorchScriptError(`${what} ${file}: no such file. Pass a TorchScript model (torch.jit.trace(model, x).save('model.pt') in PyTorch)`);
  }
  if (!isTorchScriptFile(abs)) {
    throw new TorchScriptError(`${what} ${file} is not a TorchScript archive (torch.jit.save writes one; a torch.save state dict is not one). ` +
      "Export it in PyTorch with torch.jit.trace(model, torch.randn(1, 3, 224, 224)).save('model.pt'), or load a torchvision state dict with Model.load(file, { arch })");
  }
  return { file: abs, sha256: fileSha256(abs) };
}

/**
 * Loads the TorchScript backbone a spec names (see the module comment).
 * @throws TorchScriptError when the file is missing, changed since the model was built on it, or not TorchScript.
 */
export function loadTorchScriptBackbone(spec: TorchScriptBackboneSpec): ScriptModule {
  if ((spec.featureStages ?? 1) !== 1 || (spec.featureGrid ?? 1) !== 1) {
    throw new RangeError('a TorchScript backbone returns what its forward returns: featureStages / featureGrid pool a dyad ResNet\'s conv maps (leave them at 1)');
  }
  const file = spec.file;
  if (!file) throw new TorchScriptError("a 'torchscript' backbone needs its .pt file (--backbone-from model.pt, or backboneFrom in the config)");
  if (!existsSync(file)) {
    throw new TorchScriptError(`the TorchScript model ${file} this model is built on is missing: its checkpoints hold the weights but not the graph. ` +
      `Put the .pt file back at ${file} (the same file: its sha256 is checked)`);
  }
  if (spec.sha256) {
    const now = fileSha256(file);
    if (now !== spec.sha256) {
      throw new TorchScriptError(`the TorchScript model ${file} changed since this model was built on it (sha256 ${now.slice(0, 12)}…, expected ${spec.sha256.slice(0, 12)}…). ` +
        `Put the original .pt file back at ${file}`);
    }
  }
  if (spec.featureDim !== undefined) return ScriptModule.load(file, { featureDim: spec.featureDim });
  const probe = [1, spec.inChannels, spec.imageSize, spec.imageSize];
  let sm: ScriptModule;
  try {
    sm = ScriptModule.load(file, { probeInput: probe });
  } catch (e) {
    if (e instanceof TorchScriptError) throw e;
    throw new TorchScriptError(`${file}: the TorchScript forward fails on a [${probe.join(', ')}] image: give the model's input size ` +
      `(Model.load(file, { imgsz, channels }); dyad train --image-size N --channels C). libtorch: ${libtorchReason((e as Error).message)}`, { cause: e });
  }
  const shape = sm.probeOutputShape!;
  if (shape.length !== 2) {
    sm.dispose();
    throw new TorchScriptError(`${file}: the TorchScript forward returns [${shape.join(', ')}] for a [${probe.join(', ')}] image, not features [N, D]: ` +
      'trace a model that returns pooled features or logits (torchvision: model.fc = torch.nn.Identity()), or flatten its output in the traced forward');
  }
  return sm;
}

/** The line of a TorchScript interpreter error that says what went wrong (its last `...Error: ...` line; the first is a generic header). */
function libtorchReason(msg: string): string {
  const lines = msg.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return [...lines].reverse().find((l) => /Error: /.test(l))?.replace(/^.*?Error: /, '') ?? lines[0] ?? msg;
}
