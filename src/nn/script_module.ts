/**
 * `ScriptModule`: a TorchScript model (`torch.jit.trace` / `torch.jit.script` → `model.pt`, or
 * Ultralytics' `yolo export format=torchscript`) loaded with libtorch's `torch::jit::load`
 * (native/src/jit.cc) and used as a dyad `nn.Module`:
 *
 * - `forward(x, ...)` runs the TorchScript graph under dyad's autograd and grad mode;
 * - `parameters()` / `namedParameters()` / `stateDict()` are the module's OWN tensors (the same
 *   TensorImpls), named as in PyTorch (`layer1.0.conv1.weight`), so a backward pass fills their
 *   `.grad`, a dyad optimizer's in-place step changes the TorchScript module, and
 *   `loadStateDict` writes into it;
 * - `train()` / `eval()` switch the TorchScript module's flags too. (A *traced* module records
 *   BatchNorm/Dropout in the mode it was traced in; a scripted one follows the flag.)
 * - `featureDim` (the last size of the output, found with a probe input or given) lets it be the
 *   backbone of a `Classifier`, a probe or a self-supervised method.
 * - `save(path)` writes it back as TorchScript with the current weights.
 */
import fs from 'node:fs';
import { N, type Handle } from '../torch/native.js';
import type { JitHandle } from '../torch/native_ops.js';
import { Tensor, wrap } from '../torch/tensor.js';
import { noGrad } from '../torch/autograd.js';
import { zeros } from '../torch/creation.js';
import { DyadError } from '../errors.js';
import { Module } from './module.js';
import { Parameter } from './parameter.js';

/** A TorchScript file cannot be loaded, or a ScriptModule call failed. */
export class TorchScriptError extends DyadError<'TORCHSCRIPT'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TORCHSCRIPT', message, options);
    this.name = 'TorchScriptError';
  }
}

const J = N;

/**
 * A parameter of a TorchScript module: its handle IS the module's tensor, so it must never be
 * re-pointed. `Module.to` on a parent (a method or classifier around the ScriptModule) re-points
 * parameters with `setData_`: a memory-format change is skipped here (the module keeps its
 * layout; convolutions take either), a dtype or device change is refused.
 */
class ScriptParameter extends Parameter {
  override setData_(data: Tensor): this {
    if (data.dtype === this.dtype && data.device === this.device) return this;
    throw new TorchScriptError(`a TorchScript module's parameters stay ${this.dtype} on ${this.device} (asked for ${data.dtype} on ${data.device}); trace the model on that device/dtype in PyTorch`);
  }
}

/** A Parameter object over exactly this handle (not a detached copy: gradients must reach the TorchScript module's tensor). */
function parameterOf(h: Handle): Parameter {
  return (Reflect.construct(Tensor, [h], ScriptParameter) as Parameter).keep();
}

/** A submodule of the TorchScript module, holding its part of the names. */
class ScriptSubmodule extends Module {
  forward(): never {
    throw new TorchScriptError('a TorchScript submodule has no forward of its own in dyad; call the ScriptModule');
  }
}

/**
 * True when `path` is a TorchScript archive: a zip whose central directory (read from the end of
 * the file) names `<archive>/constants.pkl`, which torch.jit.save writes and torch.save does not.
 */
export function isTorchScriptFile(path: string): boolean {
  try {
    const fd = fs.openSync(path, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const head = Buffer.alloc(4);
      fs.readSync(fd, head, 0, 4, 0);
      if (head.readUInt32LE(0) !== 0x04034b50) return false;
      const n = Math.min(size, 1 << 20);
      const tail = Buffer.alloc(n);
      fs.readSync(fd, tail, 0, n, size - n);
      return tail.includes('/constants.pkl');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

export class ScriptModule extends Module {
  #m: JitHandle;
  #featureDim: number | null;
  readonly file: string | null;

  private constructor(m: JitHandle, file: string | null, featureDim: number | null) {
    super();
    this.#m = m;
    this.file = file;
    this.#featureDim = featureDim;
    const owner = (name: string): [Module, string] => {
      const parts = name.split('.');
      let mod: Module = this;
      for (const p of parts.slice(0, -1)) {
        const self = mod as unknown as Record<string, unknown>;
        if (!(self[p] instanceof Module)) mod.registerModule(p, new ScriptSubmodule());
        mod = self[p] as Module;
      }
      return [mod, parts[parts.length - 1]!];
    };
    for (const [name, h] of J.jitNamedParameters(m)) {
      const [mod, leaf] = owner(name);
      mod.registerParameter(leaf, parameterOf(h));
    }
    for (const [name, h] of J.jitNamedBuffers(m)) {
      const [mod, leaf] = owner(name);
      const t = wrap(h);
      mod.registerBuffer(leaf, t);
    }
    this.training = J.jitIsTraining(m);
    for (const c of this.modules()) c.training = this.training;
  }

  /**
   * Loads a TorchScript file (on the CPU). `probeInput` (a shape, e.g. [1, 3, 224, 224]) runs
   * one forward without gradients to find `featureDim`; or give `featureDim` directly.
   */
  static load(path: string, o: { probeInput?: number[]; featureDim?: number } = {}): ScriptModule {
    if (!fs.existsSync(path)) throw new TorchScriptError(`${path}: no such file`);
    let m: JitHandle;
    try {
      m = J.jitLoad(path);
    } catch (e) {
      const msg = (e as Error).message;
      const hint = /constants\.pkl|archive does not contain|PytorchStreamReader/.test(msg)
        ? 'it is not a TorchScript archive (a torch.save state dict loads with torch.load; export TorchScript with torch.jit.trace(model, x).save(path))'
        : 'check that it was written by torch.jit.save with a PyTorch no newer than the libtorch dyad runs on';
      throw new TorchScriptError(`${path}: cannot load as TorchScript: ${hint}. libtorch: ${msg.split('\n')[0]}`, { cause: e });
    }
    const sm = new ScriptModule(m, path, o.featureDim ?? null);
    if (o.probeInput && o.featureDim === undefined) {
      const was = sm.training;
      sm.eval();
      const x = zeros(o.probeInput);
      try {
        const y = noGrad(() => sm.forward(x));
        sm.#featureDim = y.size(-1);
        sm.probeOutputShape = y.shape;
        y.dispose();
      } catch (e) {
        sm.dispose();
        throw e;
      } finally {
        x.dispose();
      }
      sm.train(was);
    }
    return sm;
  }

  /** The output shape of the `probeInput` forward (null without one). */
  probeOutputShape: number[] | null = null;

  /** The last size of `forward`'s output (for a Classifier's head). */
  get featureDim(): number {
    if (this.#featureDim === null) throw new TorchScriptError(`${this.file ?? 'ScriptModule'}: featureDim is unknown; load it with { probeInput: [1, C, H, W] } or { featureDim }`);
    return this.#featureDim;
  }

  /** Runs the TorchScript `forward` on tensors; returns its tensor output. */
  forward(...inputs: Tensor[]): Tensor {
    const out = this.call(...inputs);
    if (!(out instanceof Tensor)) throw new TorchScriptError(`${this.file ?? 'ScriptModule'}: forward returned ${Array.isArray(out) ? 'a tuple/list' : typeof out}, not a tensor; use call() for other outputs`);
    return out;
  }

  /** Runs the TorchScript `forward`: tensors, arrays (tuples, lists), objects (dicts) or numbers. */
  call(...inputs: Tensor[]): unknown {
    const conv = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(conv);
      // a TorchScript dict arrives as an object with a null prototype; a tensor handle is a plain object
      if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === null) {
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, conv(x)]));
      }
      if (v !== null && typeof v === 'object') return wrap(v as Handle);
      return v;
    };
    return conv(J.jitForward(this.#m, inputs.map((t) => t.handle)));
  }

  override train(mode = true): this {
    super.train(mode);
    J.jitTrain(this.#m, mode);
    return this;
  }

  /** TorchScript modules stay on the CPU in float32 here (their graphs may hard-code either). */
  override to(target: Parameters<Module['to']>[0]): this {
    if (target === 'cpu' || target === 'float32' || (typeof target === 'object' && (target.device ?? 'cpu') === 'cpu' && (target.dtype ?? 'float32') === 'float32')) return this;
    throw new TorchScriptError(`${this.file ?? 'ScriptModule'}: to(${JSON.stringify(target)}) is not supported for TorchScript modules; trace the model on that device/dtype in PyTorch`);
  }

  /** Writes the module, with its current weights, as a TorchScript archive. */
  save(path: string): void {
    J.jitSave(this.#m, path);
  }
}
