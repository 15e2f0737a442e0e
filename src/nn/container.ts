/** `Sequential` and `ModuleList`. */
import { Module } from './module.js';

const isNamed = (a: unknown): a is Map<string, Module> | Record<string, Module> =>
  a instanceof Map || (typeof a === 'object' && a !== null && !(a instanceof Module) && Object.getPrototypeOf(a) === Object.prototype);

/** Shared by the indexed containers: children named "0", "1", ... */
abstract class IndexedModules<M extends Module> extends Module implements Iterable<M> {
  /** Index signature so `seq[0]` type-checks; prefer `get(i)`, which also takes negative indices. */
  [index: number]: M;

  /** Number of submodules. */
  get length(): number {
    return this.namedChildrenAll().length;
  }
  /** The submodules in order (a module listed twice appears twice). */
  protected namedChildrenAll(): [string, M][] {
    return this.ownModules() as [string, M][];
  }
  protected normIndex(i: number): number {
    const n = this.length;
    const j = i < 0 ? i + n : i;
    if (!Number.isInteger(j) || j < 0 || j >= n) throw new RangeError(`index ${i} is out of range for ${this.constructor.name} of length ${n}`);
    return j;
  }
  /** The `i`-th submodule; negative counts from the end. */
  get(i: number): M {
    return this.namedChildrenAll()[this.normIndex(i)]![1];
  }
  [Symbol.iterator](): Iterator<M> {
    return this.namedChildrenAll().map(([, m]) => m)[Symbol.iterator]();
  }
  /** Adds `module` at the end (named by its index). */
  append(module: M): this {
    this.registerModule(String(this.length), module);
    return this;
  }
  extend(modules: Iterable<M>): this {
    for (const m of modules) this.append(m);
    return this;
  }
}

/**
 * Runs its modules in order, each one's output the next one's input. Children are named
 * "0", "1", ... (`new Sequential(a, b)`), or by the keys of a Map/record
 * (`new Sequential(new Map([['conv', c], ['relu', r]]))`), as PyTorch's OrderedDict form.
 */
export class Sequential extends IndexedModules<Module> {
  constructor(...modules: Module[] | [Map<string, Module> | Record<string, Module>]) {
    super();
    if (modules.length === 1 && isNamed(modules[0])) {
      const named = modules[0];
      for (const [k, m] of named instanceof Map ? named : Object.entries(named)) this.registerModule(k, m);
    } else {
      (modules as Module[]).forEach((m, i) => {
        if (!(m instanceof Module)) throw new TypeError(`Sequential: argument ${i} is not an nn.Module`);
        this.registerModule(String(i), m);
      });
    }
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  forward(input: any): any {
    let x = input;
    for (const m of this) x = m.forward(x);
    return x;
  }
}

/**
 * Holds submodules in a list so they are registered (a plain array is not): names "0", "1", ...
 * Has no `forward`: index or iterate it in your own.
 */
export class ModuleList<M extends Module = Module> extends IndexedModules<M> {
  constructor(modules: Iterable<M> = []) {
    super();
    this.extend(modules);
  }
  forward(): never {
    throw new Error('ModuleList has no forward(); iterate over it (for (const m of list) x = m.forward(x)) in your module');
  }
}
