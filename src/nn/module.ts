/**
 * `Module`: the base class of layers and models, as `torch.nn.Module`.
 *
 * State is found two ways, which can be mixed:
 * - **Discovery.** Own enumerable properties holding a `Parameter` or a `Module` are registered
 *   under their property name, in the order the properties were created, as PyTorch's
 *   `__setattr__` does. So `class Net extends nn.Module { fc = new nn.Linear(784, 10); ... }`
 *   and `this.conv1 = new nn.Conv2d(...)` in a constructor just work. The properties are
 *   re-read on every traversal (`parameters()`, `stateDict()`, `to()`, ...), so reassigning
 *   `this.fc` later, or setting `this.bias = null`, is seen too.
 * - **Explicit registration.** `registerParameter`, `registerBuffer`, `registerModule`
 *   (alias `addModule`) set the property and record the name. Buffers (running statistics,
 *   masks, queues) must be registered: a plain `Tensor` property is not state. A registered
 *   buffer's property keeps whatever tensor is assigned to it and disposes the one it replaces.
 *   The built-in layers register explicitly, so their slots exist from construction (assigning
 *   a plain Tensor to `linear.weight` is caught, as PyTorch's TypeError).
 *
 * Not discovered: plain arrays or objects of modules (use `ModuleList`/`Sequential`, as in
 * PyTorch), getters, and JS `#private` fields. To hold a module without registering it (a
 * reference to another model, say), keep it in a `#private` field.
 *
 * Names: parameters and buffers are named by their property names, joined with dots through
 * submodules (`layers.0.conv1.weight`), exactly as PyTorch does, so checkpoints use PyTorch's
 * names. State tensors with PyTorch snake_case names (`running_mean`, `in_proj_weight`) are
 * therefore snake_case properties here.
 *
 * Memory: parameters and buffers are kept (no `torch.scope` frees them); `dispose()` frees the
 * whole module's state.
 *
 * TS objects cannot be called, so call `forward(...)` directly: `this.fc.forward(x)`.
 */
import { Tensor } from '../torch/tensor.js';
import { noGrad } from '../torch/autograd.js';
import { DTYPES, isFloatingPoint, type DType, type Device } from '../torch/dtype.js';
import { Parameter } from './parameter.js';
import { DyadError } from '../errors.js';

type Kind = 'parameter' | 'buffer' | 'module';
interface Slot {
  kind: Kind;
  /** Buffers only: whether `stateDict()` includes it. */
  persistent: boolean;
}

/** A state dict: names to tensors, as a Map (ordered, as `stateDict()` returns) or a plain record. */
export type StateDict = Map<string, Tensor> | Record<string, Tensor>;

/** `loadStateDict`'s result, as PyTorch's `_IncompatibleKeys`. */
export interface IncompatibleKeys {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** Raised by `loadStateDict` when keys are missing or unexpected (strict) or shapes differ. */
export class StateDictError extends DyadError<'STATE_DICT'> {
  constructor(
    message: string,
    readonly missingKeys: string[],
    readonly unexpectedKeys: string[],
    readonly mismatchedKeys: { key: string; expected: number[]; got: number[] }[],
  ) {
    super('STATE_DICT', message);
    this.name = 'StateDictError';
  }
}

const fmtShape = (s: number[]): string => `[${s.join(', ')}]`;
const join = (prefix: string, name: string): string => (prefix === '' ? name : `${prefix}.${name}`);

export abstract class Module {
  /** Training mode (`train()`) or evaluation mode (`eval()`); layers such as Dropout and BatchNorm read it. */
  training = true;
  declare private readonly _slots: Map<string, Slot>;

  constructor() {
    Object.defineProperty(this, '_slots', { value: new Map<string, Slot>(), enumerable: false, writable: false });
  }

  /** The computation. Subclasses define it with their own signature. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  abstract forward(...args: any[]): any;

  // ---- registration ----------------------------------------------------------------------------

  /** Brings the registry up to date with the object's own properties; returns it. */
  private _sync(): Map<string, Slot> {
    const slots = this._slots;
    const self = this as unknown as Record<string, unknown>;
    for (const key of Object.keys(this)) {
      const v = self[key];
      const s = slots.get(key);
      if (v instanceof Parameter) {
        if (s?.kind !== 'parameter') slots.set(key, { kind: 'parameter', persistent: true });
      } else if (v instanceof Module) {
        if (s?.kind !== 'module') slots.set(key, { kind: 'module', persistent: true });
      } else if (s !== undefined && v != null && !(s.kind === 'buffer' && v instanceof Tensor)) {
        if (s.kind === 'parameter' && v instanceof Tensor) {
          throw new TypeError(`${this._name()}.${key} is a parameter but was assigned a plain Tensor; wrap it: new nn.Parameter(t)`);
        }
        slots.delete(key); // the name now holds something else (a number, say): no longer state
      }
    }
    for (const key of [...slots.keys()]) if (!Object.prototype.hasOwnProperty.call(this, key)) slots.delete(key);
    return slots;
  }

  private _checkName(name: string, what: string): void {
    if (typeof name !== 'string' || name === '') throw new TypeError(`${what} name must be a non-empty string`);
    if (name.includes('.')) throw new TypeError(`${what} name can't contain ".", got '${name}'`);
    if (name in this && !Object.prototype.hasOwnProperty.call(this, name)) {
      throw new TypeError(`${what} name '${name}' clashes with a method or property of ${this._name()}; pick another name`);
    }
  }

  /** Registers `param` (or null, a declared but absent parameter) as `this[name]`. */
  registerParameter(name: string, param: Parameter | null): void {
    this._checkName(name, 'parameter');
    if (param !== null && !(param instanceof Parameter)) {
      throw new TypeError(`registerParameter('${name}'): expected an nn.Parameter or null; wrap a tensor with new nn.Parameter(t)`);
    }
    this._sync();
    (this as unknown as Record<string, unknown>)[name] = param;
    this._slots.set(name, { kind: 'parameter', persistent: true });
  }

  /**
   * Registers `tensor` (or null) as the buffer `this[name]`: state that is not learned, such as
   * BatchNorm's running mean. It is kept (no scope frees it), moves with `to()`, and is in
   * `stateDict()` unless `persistent` is false.
   *
   * The module owns its buffers: assigning a new tensor later (`this.queue = torch.cat(...)`)
   * keeps the new one and disposes the old one, so a buffer replaced every step does not leak
   * and is not freed by the step's scope. (Updating in place, `copy_`/`mul_`, needs neither.)
   */
  registerBuffer(name: string, tensor: Tensor | null, opts: { persistent?: boolean } = {}): void {
    this._checkName(name, 'buffer');
    if (tensor !== null && !(tensor instanceof Tensor)) throw new TypeError(`registerBuffer('${name}'): expected a Tensor or null`);
    if (tensor instanceof Parameter) throw new TypeError(`registerBuffer('${name}'): got an nn.Parameter; use registerParameter`);
    const slots = this._sync();
    const self = this as unknown as Record<string, unknown>;
    const prev = slots.get(name)?.kind === 'buffer' ? self[name] : undefined;
    let value: Tensor | null = tensor === null ? null : tensor.keep();
    if (prev instanceof Tensor && prev !== value) prev.dispose();
    const owner = this._name();
    Object.defineProperty(this, name, {
      enumerable: true,
      configurable: true,
      get: () => value,
      set: (v: unknown) => {
        if (v != null && (!(v instanceof Tensor) || v instanceof Parameter)) {
          throw new TypeError(`cannot assign ${v instanceof Parameter ? 'an nn.Parameter' : typeof v} to buffer '${name}' of ${owner} (a Tensor or null required)`);
        }
        const next = v == null ? null : (v as Tensor).keep();
        if (value !== null && value !== next) value.dispose();
        value = next;
      },
    });
    slots.set(name, { kind: 'buffer', persistent: opts.persistent ?? true });
  }

  /** Registers `module` (or null) as the submodule `this[name]`. */
  registerModule(name: string, module: Module | null): void {
    this._checkName(name, 'module');
    if (module !== null && !(module instanceof Module)) throw new TypeError(`registerModule('${name}'): expected an nn.Module or null`);
    this._sync();
    (this as unknown as Record<string, unknown>)[name] = module;
    this._slots.set(name, { kind: 'module', persistent: true });
  }
  /** Alias of `registerModule`, as PyTorch's `add_module`. */
  addModule(name: string, module: Module | null): void {
    this.registerModule(name, module);
  }

  /** This module's own (non-recursive) entries of one kind, skipping null ones. */
  private _own<T>(kind: Kind, persistentOnly = false): [string, T][] {
    const out: [string, T][] = [];
    const self = this as unknown as Record<string, unknown>;
    for (const [name, s] of this._sync()) {
      if (s.kind !== kind || (persistentOnly && !s.persistent)) continue;
      const v = self[name];
      if (v != null) out.push([name, v as T]);
    }
    return out;
  }

  // ---- traversal -----------------------------------------------------------------------------------

  /** Direct submodules with their names, in registration order, duplicates and all (for containers). */
  protected ownModules(): [string, Module][] {
    return this._own<Module>('module');
  }

  /** Direct submodules with their names (each module once). */
  namedChildren(): [string, Module][] {
    const seen = new Set<Module>();
    return this._own<Module>('module').filter(([, m]) => (seen.has(m) ? false : (seen.add(m), true)));
  }
  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** This module and all below it, depth first, with dotted names ('' for this one); each module once. */
  namedModules(opts: { prefix?: string; removeDuplicate?: boolean } = {}): [string, Module][] {
    const out: [string, Module][] = [];
    const memo = opts.removeDuplicate === false ? null : new Set<Module>();
    const walk = (m: Module, prefix: string): void => {
      if (memo !== null) {
        if (memo.has(m)) return;
        memo.add(m);
      }
      out.push([prefix, m]);
      for (const [name, c] of m._own<Module>('module')) walk(c, join(prefix, name));
    };
    walk(this, opts.prefix ?? '');
    return out;
  }
  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  private _namedMembers<T>(kind: Kind, o: { prefix?: string; recurse?: boolean; removeDuplicate?: boolean }): [string, T][] {
    const removeDuplicate = o.removeDuplicate ?? true;
    const mods: [string, Module][] = o.recurse === false ? [[o.prefix ?? '', this]] : this.namedModules({ prefix: o.prefix, removeDuplicate });
    const seen = new Set<T>();
    const out: [string, T][] = [];
    for (const [mp, m] of mods) {
      for (const [name, v] of m._own<T>(kind)) {
        if (removeDuplicate) {
          if (seen.has(v)) continue;
          seen.add(v);
        }
        out.push([join(mp, name), v]);
      }
    }
    return out;
  }

  /** Parameters with dotted names (`layers.0.conv1.weight`); a shared parameter appears once. */
  namedParameters(opts: { prefix?: string; recurse?: boolean; removeDuplicate?: boolean } = {}): [string, Parameter][] {
    return this._namedMembers<Parameter>('parameter', opts);
  }
  /** All parameters (for an optimizer); `recurse: false` gives this module's own only. */
  parameters(opts: { recurse?: boolean } = {}): Parameter[] {
    return this.namedParameters({ recurse: opts.recurse }).map(([, p]) => p);
  }
  namedBuffers(opts: { prefix?: string; recurse?: boolean; removeDuplicate?: boolean } = {}): [string, Tensor][] {
    return this._namedMembers<Tensor>('buffer', opts);
  }
  buffers(opts: { recurse?: boolean } = {}): Tensor[] {
    return this.namedBuffers({ recurse: opts.recurse }).map(([, b]) => b);
  }

  /** The submodule at a dotted path (`'layers.0.conv1'`); '' is this module. */
  getSubmodule(target: string): Module {
    if (target === '') return this;
    let m: Module = this;
    let path = '';
    for (const part of target.split('.')) {
      const next = m._own<Module>('module').find(([n]) => n === part)?.[1];
      if (next === undefined) throw new Error(`${m._name()}${path === '' ? '' : ` (at '${path}')`} has no submodule '${part}'`);
      m = next;
      path = join(path, part);
    }
    return m;
  }

  // ---- modes and gradients -----------------------------------------------------------------------------

  /** Sets training mode on this module and every submodule. */
  train(mode = true): this {
    this.training = mode;
    for (const c of this.children()) c.train(mode);
    return this;
  }
  /** Evaluation mode: `train(false)`. */
  eval(): this {
    return this.train(false);
  }
  /** Sets `requiresGrad` on every parameter (false freezes the module). */
  requiresGrad_(requiresGrad = true): this {
    for (const p of this.parameters()) p.requiresGrad_(requiresGrad);
    return this;
  }
  /**
   * Clears gradients: sets them to null (PyTorch's default, `set_to_none=True`: frees the
   * memory and lets the next backward write rather than add), or with `setToNone: false`
   * zeroes them in place.
   */
  zeroGrad(opts: { setToNone?: boolean } = {}): void {
    for (const p of this.parameters()) {
      if (opts.setToNone ?? true) {
        p.grad = null;
      } else {
        const g = p.grad;
        if (g !== null) {
          noGrad(() => g.zero_());
          g.dispose();
        }
      }
    }
  }
  /** Calls `fn` on every submodule (children first) and then on this module, as PyTorch's `apply`. */
  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  // ---- dtype and device -----------------------------------------------------------------------------------

  /**
   * Moves and/or casts parameters and buffers in place: `to('cuda')`, `to('float64')`,
   * `to({ dtype, device })`. As in PyTorch, a dtype applies to floating-point tensors only
   * (`num_batches_tracked` stays int64), parameters keep their identity (an optimizer built
   * before still holds them) and their gradients move with them. Returns this module.
   */
  to(target: DType | Device | { dtype?: DType; device?: Device; memoryFormat?: 'channelsLast' | 'contiguous' }): this {
    let dtype: DType | undefined;
    let device: Device | undefined;
    let memoryFormat: 'channelsLast' | 'contiguous' | undefined;
    if (typeof target === 'string') {
      if ((DTYPES as readonly string[]).includes(target)) dtype = target as DType;
      else device = target;
    } else {
      dtype = target.dtype;
      device = target.device;
      memoryFormat = target.memoryFormat;
    }
    const convert = (t: Tensor): Tensor | null => {
      const castDtype = dtype !== undefined && isFloatingPoint(t.dtype) && t.dtype !== dtype ? dtype : undefined;
      const moveDevice = device !== undefined && t.device !== device ? device : undefined;
      // memory format applies to 4-d tensors (conv weights), as model.to(memory_format=...) does
      const reformat = memoryFormat !== undefined && t.ndim === 4 && !t.isContiguous(memoryFormat) ? memoryFormat : undefined;
      if (castDtype === undefined && moveDevice === undefined && reformat === undefined) return null;
      const moved = castDtype === undefined && moveDevice === undefined ? t.alias() : t.to({ dtype: castDtype, device: moveDevice });
      if (reformat === undefined) return moved;
      const r = moved.contiguous(reformat);
      moved.dispose();
      return r;
    };
    noGrad(() => {
      for (const m of this.modules()) {
        for (const [, p] of m._own<Parameter>('parameter')) {
          const d = p.detach();
          const c = convert(d);
          d.dispose();
          if (c === null) continue;
          const g = p.grad;
          const gc = g === null ? null : g.to({ dtype: c.dtype, device: c.device });
          p.setData_(c);
          c.dispose();
          if (gc !== null) {
            p.grad = gc;
            gc.dispose();
            g!.dispose();
          }
        }
        const self = m as unknown as Record<string, unknown>;
        for (const [name, b] of m._own<Tensor>('buffer')) {
          const c = convert(b);
          if (c === null) continue;
          self[name] = c; // the buffer's setter keeps c and disposes b
        }
      }
    });
    return this;
  }
  float(): this { return this.to('float32'); }
  double(): this { return this.to('float64'); }
  half(): this { return this.to('float16'); }
  bfloat16(): this { return this.to('bfloat16'); }
  cpu(): this { return this.to('cpu'); }
  cuda(index = 0): this { return this.to(`cuda:${index}`); }

  // ---- state dict ------------------------------------------------------------------------------------------

  /**
   * The live state tensors by name: for each module, its parameters, then its persistent
   * buffers, then its submodules' entries, as PyTorch orders `state_dict()`. Shared modules
   * appear under each of their names.
   */
  private _stateEntries(prefix: string, out: [string, Tensor][]): void {
    for (const [n, p] of this._own<Parameter>('parameter')) out.push([prefix + n, p]);
    for (const [n, b] of this._own<Tensor>('buffer', true)) out.push([prefix + n, b]);
    for (const [n, c] of this._own<Module>('module')) c._stateEntries(`${prefix}${n}.`, out);
  }

  /**
   * Parameters and persistent buffers by PyTorch name, e.g. `bn.running_mean`,
   * `bn.num_batches_tracked`. Values are detached tensors sharing storage with the module's
   * (new handles: free them with `torch.disposeAll(sd)` or make the call inside a
   * `torch.scope`); `keepVars: true` returns the parameter and buffer objects themselves.
   */
  stateDict(opts: { prefix?: string; keepVars?: boolean } = {}): Map<string, Tensor> {
    const entries: [string, Tensor][] = [];
    this._stateEntries(opts.prefix ?? '', entries);
    return new Map(entries.map(([k, t]) => [k, opts.keepVars ? t : t.detach()]));
  }

  /**
   * Local state names that may be absent from a loaded state dict without being reported
   * missing (BatchNorm's `num_batches_tracked`, as PyTorch tolerates it in old checkpoints).
   */
  protected optionalStateKeys(): string[] {
    return [];
  }

  /**
   * Copies `stateDict`'s values into this module's parameters and buffers, in place (no
   * gradient recorded; dtype and device converted). Checks everything before copying anything:
   * a shape mismatch is always an error, missing and unexpected keys are errors when `strict`
   * (the default). The error (a `StateDictError`) lists every missing, unexpected and
   * mis-shaped key, with both shapes. With `strict: false` the matching keys are loaded and
   * the others returned.
   */
  loadStateDict(stateDict: StateDict, opts: { strict?: boolean } = {}): IncompatibleKeys {
    const strict = opts.strict ?? true;
    const src = stateDict instanceof Map ? stateDict : new Map(Object.entries(stateDict));
    const own: [string, Tensor][] = [];
    this._stateEntries('', own);
    const optional = new Set<string>();
    for (const [prefix, m] of this.namedModules({ removeDuplicate: false })) {
      for (const k of m.optionalStateKeys()) optional.add(join(prefix, k));
    }
    const ownKeys = new Set(own.map(([k]) => k));
    const missingKeys = own.map(([k]) => k).filter((k) => !src.has(k) && !optional.has(k));
    const unexpectedKeys = [...src.keys()].filter((k) => !ownKeys.has(k));
    const mismatchedKeys: { key: string; expected: number[]; got: number[] }[] = [];
    for (const [k, t] of own) {
      const s = src.get(k);
      if (s === undefined) continue;
      if (!(s instanceof Tensor)) throw new TypeError(`loadStateDict: '${k}' is not a Tensor`);
      const [a, b] = [t.shape, s.shape];
      if (a.length !== b.length || a.some((v, i) => v !== b[i])) mismatchedKeys.push({ key: k, expected: a, got: b });
    }
    const problems: string[] = [];
    if (strict && missingKeys.length > 0) problems.push(`Missing key(s) in state_dict: ${missingKeys.map((k) => `"${k}"`).join(', ')}.`);
    if (strict && unexpectedKeys.length > 0) problems.push(`Unexpected key(s) in state_dict: ${unexpectedKeys.map((k) => `"${k}"`).join(', ')}.`);
    for (const m of mismatchedKeys) {
      problems.push(`size mismatch for ${m.key}: copying a param with shape ${fmtShape(m.got)} from checkpoint, the shape in current model is ${fmtShape(m.expected)}.`);
    }
    if (problems.length > 0) {
      const hint = mismatchedKeys.length === 0 ? '\n\t(pass { strict: false } to load the keys that match)' : '';
      throw new StateDictError(`Error(s) in loading state_dict for ${this._name()}:\n\t${problems.join('\n\t')}${hint}`,
        missingKeys, unexpectedKeys, mismatchedKeys);
    }
    noGrad(() => {
      for (const [k, t] of own) {
        const s = src.get(k);
        if (s !== undefined) t.copy_(s);
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  // ---- lifetime and printing -----------------------------------------------------------------------------

  /** Frees every parameter and buffer of this module and its submodules. The module is unusable after. */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const [, p] of m._own<Parameter>('parameter')) p.dispose();
      for (const [, b] of m._own<Tensor>('buffer')) b.dispose();
    }
  }

  /** Extra text inside this module's line of `toString()`, as PyTorch's `extra_repr`. */
  extraRepr(): string {
    return '';
  }
  private _name(): string {
    return this.constructor.name || 'Module';
  }
  /** PyTorch-style summary: `Net(\n  (fc): Linear(in_features=784, out_features=10, bias=True)\n)`. */
  toString(): string {
    const extra = this.extraRepr();
    const kids = this._own<Module>('module');
    if (kids.length === 0) return `${this._name()}(${extra})`;
    const lines = extra === '' ? [] : extra.split('\n');
    for (const [n, c] of kids) lines.push(`(${n}): ${c.toString().split('\n').join('\n  ')}`);
    return `${this._name()}(\n  ${lines.join('\n  ')}\n)`;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}
