/**
 * `Optimizer`: the base of SGD, Adam, AdamW and LARS, with PyTorch's shape: parameter groups
 * with per-group hyperparameters (defaults from the constructor), per-parameter state,
 * `zeroGrad()`, `step()` under `noGrad` in a memory scope, and a state dict that resumes
 * training exactly.
 *
 * The state dict splits into tensors and JSON so it can be saved as safetensors + JSON:
 * `state` maps `state.<i>.<name>` (i: the parameter's index over all groups, in order, as in
 * PyTorch; name: PyTorch's, e.g. `momentum_buffer`, `exp_avg`) to tensors, and `meta` holds the
 * per-parameter scalars (`step`) and every group's hyperparameters with `params` as indices.
 */
import { Tensor, noGrad, scope, isFloatingPoint } from '../torch/index.js';

/** The fields every parameter group has. Extra keys (`name`, `lars`, ...) are kept as given. */
export interface ParamGroupBase {
  params: Tensor[];
  lr: number;
  weightDecay: number;
  /** Multiplies the lr an LR scheduler sets for this group (layer-wise lr decay, heads). */
  lrScale?: number;
  /** The lr schedules start from, recorded by the first scheduler (PyTorch's `initial_lr`). */
  initialLr?: number;
  [key: string]: unknown;
}

/** A parameter group of an optimizer with hyperparameters `H`. */
export type ParamGroup<H> = ParamGroupBase & H;

/** A group as passed in: its params and any hyperparameters overriding the defaults. */
export type ParamGroupInput<H> = { params: Iterable<Tensor> } & Partial<H> & { lrScale?: number; [key: string]: unknown };

/** What optimizers accept: the parameters, or a list of parameter groups. */
export type Params<H> = Iterable<Tensor> | ParamGroupInput<H>[];

/** Per-parameter state: tensors (kept alive by the optimizer) and scalars such as `step`. */
export type ParamState = Record<string, Tensor | number>;

/** Anything with parameter groups whose lr can be scheduled. */
export interface HasParamGroups {
  readonly paramGroups: ParamGroupBase[];
}

/** The state dict: tensors for safetensors, plain JSON for the rest. */
export interface OptimizerStateDict {
  /** `state.<paramIndex>.<name>` -> tensor (aliases of the live state: copy them to keep them while training goes on). */
  state: Record<string, Tensor>;
  meta: {
    /** Per-parameter scalars, by parameter index. */
    state: Record<string, Record<string, number>>;
    /** Every group's hyperparameters; `params` lists the group's parameter indices. */
    paramGroups: (Record<string, unknown> & { params: number[] })[];
  };
}

export abstract class Optimizer<H extends { lr: number; weightDecay: number }> implements HasParamGroups {
  readonly defaults: Readonly<H>;
  readonly paramGroups: ParamGroup<H>[] = [];
  /** Per-parameter state (created lazily by `step()`). */
  readonly state = new Map<Tensor, ParamState>();
  private readonly seen = new Set<Tensor>();

  constructor(params: Params<H>, defaults: H) {
    this.defaults = Object.freeze({ ...defaults });
    if (params instanceof Tensor) {
      throw new TypeError(`${this.constructor.name}: params must be a list of Tensors or of parameter groups, got a single Tensor (wrap it: [t])`);
    }
    const list = Array.isArray(params) ? params : [...(params as Iterable<Tensor>)];
    if (list.length === 0) throw new Error(`${this.constructor.name}: got an empty parameter list`);
    if (list[0] instanceof Tensor) this.addParamGroup({ params: list as Tensor[] } as unknown as ParamGroupInput<H>);
    else for (const g of list as ParamGroupInput<H>[]) this.addParamGroup(g);
  }

  /** Checks a group's hyperparameters; throws with the optimizer's name and the bad value. */
  protected abstract validateGroup(group: ParamGroup<H>): void;
  /**
   * Updates one parameter that has a gradient (`grad`, already read), with its state and group.
   * Runs under `noGrad` in a memory scope of its own, so temporaries are freed right after each
   * parameter (less memory and better allocator reuse than freeing them at the end of the step).
   */
  protected abstract update(p: Tensor, grad: Tensor, state: ParamState, group: ParamGroup<H>): void;

  /** Adds a group (e.g. a head unfrozen later). Missing hyperparameters come from the defaults. */
  addParamGroup(input: ParamGroupInput<H>): void {
    const name = this.constructor.name;
    if (input === null || typeof input !== 'object' || !('params' in input)) throw new TypeError(`${name}: a parameter group needs 'params'`);
    const params = input.params instanceof Tensor ? [input.params] : [...input.params];
    for (const p of params) {
      if (!(p instanceof Tensor)) throw new TypeError(`${name}: parameters must be Tensors, got ${typeof p}`);
      if (!p.isLeaf) throw new Error(`${name}: can't optimize a non-leaf Tensor (shape [${p.shape.join(', ')}]); pass the parameter itself, not a result computed from it`);
    }
    if (new Set(params).size !== params.length) throw new Error(`${name}: a parameter appears twice in one group`);
    for (const p of params) {
      if (this.seen.has(p)) throw new Error(`${name}: some parameters appear in more than one parameter group`);
    }
    const group = { ...this.defaults, ...input, params } as ParamGroup<H>;
    for (const [k, v] of Object.entries(this.defaults)) if (group[k] === undefined) (group as Record<string, unknown>)[k] = v;
    this.validateGroup(group);
    for (const p of params) this.seen.add(p);
    this.paramGroups.push(group);
  }

  /** Clears gradients: sets them to null (default, as `set_to_none=True`), or zeroes them in place. */
  zeroGrad(opts: { setToNone?: boolean } = {}): void {
    const toNone = opts.setToNone ?? true;
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (toNone) {
          p.grad = null;
        } else {
          const gr = p.grad;
          if (gr !== null) {
            gr.zero_();
            gr.dispose();
          }
        }
      }
    }
  }

  /** One optimization step over every parameter that has a gradient. */
  step(): void {
    noGrad(() => {
      for (const g of this.paramGroups) {
        for (const p of g.params) {
          scope(() => {
            const grad = p.grad;
            if (grad !== null) this.update(p, grad, this.stateOf(p), g);
          });
        }
      }
    });
  }

  /** The state of `p`, created empty on first use. */
  protected stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (s === undefined) {
      s = {};
      this.state.set(p, s);
    }
    return s;
  }

  /** The parameters in state-dict order (groups in order, then params in order). */
  private indexed(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** The optimizer's state and hyperparameters, split into tensors and JSON (see the file comment). */
  stateDict(): OptimizerStateDict {
    const params = this.indexed();
    const tensors: Record<string, Tensor> = {};
    const scalars: Record<string, Record<string, number>> = {};
    params.forEach((p, i) => {
      const st = this.state.get(p);
      if (st === undefined) return;
      for (const [k, v] of Object.entries(st)) {
        if (v instanceof Tensor) tensors[`state.${i}.${k}`] = v.alias();
        else (scalars[i] ??= {})[k] = v;
      }
    });
    let next = 0;
    const groups = this.paramGroups.map((g) => {
      const { params: ps, ...hyper } = g;
      const out = structuredClone(hyper) as unknown as Record<string, unknown> & { params: number[] };
      out.params = ps.map(() => next++);
      return out;
    });
    return { state: tensors, meta: { state: scalars, paramGroups: groups } };
  }

  /**
   * Restores a state dict from `stateDict()` (possibly through safetensors + JSON): the same
   * groups with the same parameter counts. Tensors are copied onto each parameter's device (and
   * floating dtype); hyperparameters of each group are replaced by the saved ones, as PyTorch does.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const name = this.constructor.name;
    const groups = sd?.meta?.paramGroups;
    if (!Array.isArray(groups)) throw new TypeError(`${name}.loadStateDict: expected { state, meta: { state, paramGroups } }`);
    if (groups.length !== this.paramGroups.length) {
      throw new Error(`${name}.loadStateDict: the state dict has ${groups.length} parameter groups, this optimizer has ${this.paramGroups.length}`);
    }
    groups.forEach((g, i) => {
      const have = this.paramGroups[i]!.params.length;
      if (!Array.isArray(g.params) || g.params.length !== have) {
        throw new Error(`${name}.loadStateDict: parameter group ${i} has ${Array.isArray(g.params) ? g.params.length : '?'} parameters in the state dict, ${have} here`);
      }
    });
    const params = this.indexed();
    // Saved index -> live parameter (indices as saved, in case they are not 0..n-1 in order).
    const byIndex = new Map<number, Tensor>();
    groups.forEach((g, gi) => g.params.forEach((idx, j) => byIndex.set(Number(idx), this.paramGroups[gi]!.params[j]!)));
    const fresh = new Map<Tensor, ParamState>();
    const paramOf = (key: string, idx: string): Tensor => {
      const p = byIndex.get(Number(idx));
      if (p === undefined) throw new Error(`${name}.loadStateDict: '${key}' refers to parameter ${idx}, but there are ${params.length}`);
      return p;
    };
    try {
      for (const [key, t] of Object.entries(sd.state ?? {})) {
        const m = /^state\.(\d+)\.(.+)$/.exec(key);
        if (m === null) throw new Error(`${name}.loadStateDict: unexpected state key '${key}' (expected state.<index>.<name>)`);
        if (!(t instanceof Tensor)) throw new TypeError(`${name}.loadStateDict: '${key}' is not a Tensor`);
        const p = paramOf(key, m[1]!);
        const ps = p.shape;
        const ts = t.shape;
        if (ps.length !== ts.length || ps.some((d, i) => d !== ts[i])) {
          throw new Error(`${name}.loadStateDict: '${key}' has shape [${ts.join(', ')}] but parameter ${m[1]} has shape [${ps.join(', ')}]: is this the state of another model?`);
        }
        const copy = scope(() => noGrad(() =>
          t.to({ device: p.device, dtype: isFloatingPoint(t.dtype) ? p.dtype : t.dtype }).clone().keep()));
        let st = fresh.get(p);
        if (st === undefined) fresh.set(p, (st = {}));
        st[m[2]!] = copy;
      }
      for (const [idx, rec] of Object.entries(sd.meta.state ?? {})) {
        const p = paramOf(`meta.state.${idx}`, idx);
        let st = fresh.get(p);
        if (st === undefined) fresh.set(p, (st = {}));
        for (const [k, v] of Object.entries(rec)) {
          if (typeof v !== 'number') throw new TypeError(`${name}.loadStateDict: meta.state.${idx}.${k} is not a number`);
          st[k] = v;
        }
      }
    } catch (e) {
      for (const st of fresh.values()) for (const v of Object.values(st)) if (v instanceof Tensor) v.dispose();
      throw e;
    }
    this.disposeState();
    for (const [p, st] of fresh) this.state.set(p, st);
    groups.forEach((g, i) => {
      const { params: _ignored, ...hyper } = g;
      Object.assign(this.paramGroups[i]!, structuredClone(hyper));
    });
  }

  private disposeState(): void {
    for (const st of this.state.values()) for (const v of Object.values(st)) if (v instanceof Tensor) v.dispose();
    this.state.clear();
  }

  /** Frees the optimizer's state tensors (momentum buffers, moments). The parameters are untouched. */
  dispose(): void {
    this.disposeState();
  }
}

/** Throws `<Optimizer>: invalid <what>: <value>` unless `ok`. */
export function check(ok: boolean, optimizer: string, what: string, value: unknown): void {
  if (!ok) throw new RangeError(`${optimizer}: invalid ${what}: ${JSON.stringify(value)}`);
}

/** `defaults` overridden by the options that are set (an `undefined` option keeps the default). */
export function withDefaults<T extends object>(defaults: T, opts: object | undefined): T {
  const out = { ...defaults } as Record<string, unknown>;
  for (const [k, v] of Object.entries(opts ?? {})) if (v !== undefined) out[k] = v;
  return out as T;
}
