/**
 * Learning-rate schedules. Each sets `group.lr` on its optimizer from the group's base lr
 * (`group.initialLr`, recorded from `group.lr` when the first scheduler is made, as PyTorch's
 * `initial_lr`) times `group.lrScale` when the group has one. As in PyTorch, making a scheduler
 * applies step 0's lr; call `step()` after each `optimizer.step()`. Lrs are closed-form
 * functions of the step count, so `loadStateDict` resumes exactly.
 */
import type { HasParamGroups, ParamGroupBase } from './optimizer.js';

export interface LRSchedulerState {
  /** The scheduler's class name, checked on load. */
  name: string;
  lastStep: number;
  /** Each group's base lr. */
  baseLrs: number[];
  [option: string]: unknown;
}

export abstract class LRScheduler {
  /** Steps taken (PyTorch's `last_epoch`): 0 right after construction. */
  lastStep = 0;
  private lastLrs: number[] = [];

  constructor(readonly optimizer: HasParamGroups) {
    for (const g of optimizer.paramGroups) if (g.initialLr === undefined) g.initialLr = g.lr;
  }

  /** The unscaled lr at `step` for a group whose base lr is `baseLr`. */
  abstract lrAt(step: number, baseLr: number): number;

  /** The options to record in the state dict (informational; the constructor's options rule). */
  protected options(): Record<string, unknown> {
    return {};
  }

  /** Sets every group's lr for the current step. Subclasses call it at the end of their constructor. */
  protected apply(): void {
    this.lastLrs = this.optimizer.paramGroups.map((g: ParamGroupBase) => {
      if (g.initialLr === undefined) g.initialLr = g.lr;
      const lr = this.lrAt(this.lastStep, g.initialLr) * (g.lrScale ?? 1);
      g.lr = lr;
      return lr;
    });
  }

  /** Advances one step and sets the new lrs. */
  step(): void {
    this.lastStep += 1;
    this.apply();
  }

  /** The lr last set on each group. */
  getLastLr(): number[] {
    return this.lastLrs.slice();
  }

  stateDict(): LRSchedulerState {
    return { ...this.options(), name: this.constructor.name, lastStep: this.lastStep, baseLrs: this.optimizer.paramGroups.map((g) => g.initialLr ?? g.lr) };
  }

  /** Restores the step count and base lrs, then sets the lrs for that step. */
  loadStateDict(sd: LRSchedulerState): void {
    const me = this.constructor.name;
    if (sd?.name !== me) throw new Error(`${me}.loadStateDict: this state dict belongs to ${sd?.name ?? 'something else'}`);
    if (!Number.isInteger(sd.lastStep) || sd.lastStep < 0) throw new RangeError(`${me}.loadStateDict: invalid lastStep ${sd.lastStep}`);
    const groups = this.optimizer.paramGroups;
    if (!Array.isArray(sd.baseLrs) || sd.baseLrs.length !== groups.length) {
      throw new Error(`${me}.loadStateDict: the state dict has ${sd.baseLrs?.length} base lrs for ${groups.length} parameter groups`);
    }
    groups.forEach((g, i) => { g.initialLr = sd.baseLrs[i]!; });
    this.lastStep = sd.lastStep;
    this.apply();
  }
}

const nonNegInt = (v: number, what: string, who: string): void => {
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`${who}: ${what} must be a non-negative integer, got ${v}`);
};

export interface LinearWarmupCosineOptions {
  /** Steps of linear warmup from `warmupStartLr` to the base lr. */
  warmupSteps: number;
  /** Total steps: the lr reaches `minLr` at this step and stays there. */
  totalSteps: number;
  /** Default 0. */
  warmupStartLr?: number;
  /** Default 0. */
  minLr?: number;
}

/**
 * Linear warmup then cosine decay, per step (SimCLR, BYOL, MoCo v3, DINO recipes):
 * lr(t) = warmupStartLr + (base − warmupStartLr)·t / warmupSteps for t < warmupSteps, then
 * minLr + (base − minLr)·(1 + cos(π·(t − warmupSteps) / (totalSteps − warmupSteps))) / 2,
 * and minLr from totalSteps on. So lr(0) = warmupStartLr, lr(warmupSteps) = base,
 * lr(totalSteps) = minLr.
 */
export class LinearWarmupCosine extends LRScheduler {
  readonly warmupSteps: number;
  readonly totalSteps: number;
  readonly warmupStartLr: number;
  readonly minLr: number;

  constructor(optimizer: HasParamGroups, opts: LinearWarmupCosineOptions) {
    super(optimizer);
    nonNegInt(opts.warmupSteps, 'warmupSteps', 'LinearWarmupCosine');
    nonNegInt(opts.totalSteps, 'totalSteps', 'LinearWarmupCosine');
    if (opts.totalSteps < opts.warmupSteps) {
      throw new RangeError(`LinearWarmupCosine: totalSteps (${opts.totalSteps}) must be >= warmupSteps (${opts.warmupSteps})`);
    }
    this.warmupSteps = opts.warmupSteps;
    this.totalSteps = opts.totalSteps;
    this.warmupStartLr = opts.warmupStartLr ?? 0;
    this.minLr = opts.minLr ?? 0;
    this.apply();
  }

  lrAt(t: number, base: number): number {
    const W = this.warmupSteps;
    if (t < W) return this.warmupStartLr + ((base - this.warmupStartLr) * t) / W;
    const span = this.totalSteps - W;
    const progress = span <= 0 ? 1 : Math.min((t - W) / span, 1);
    return this.minLr + ((base - this.minLr) * (1 + Math.cos(Math.PI * progress))) / 2;
  }

  protected override options(): Record<string, unknown> {
    return { warmupSteps: this.warmupSteps, totalSteps: this.totalSteps, warmupStartLr: this.warmupStartLr, minLr: this.minLr };
  }
}

/** Multiplies the lr by `gamma` every `stepSize` steps: base·gamma^⌊t / stepSize⌋ (torch's StepLR). */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;

  constructor(optimizer: HasParamGroups, opts: { stepSize: number; gamma?: number }) {
    super(optimizer);
    if (!Number.isInteger(opts.stepSize) || opts.stepSize < 1) throw new RangeError(`StepLR: stepSize must be a positive integer, got ${opts.stepSize}`);
    this.stepSize = opts.stepSize;
    this.gamma = opts.gamma ?? 0.1;
    this.apply();
  }

  lrAt(t: number, base: number): number {
    return base * this.gamma ** Math.floor(t / this.stepSize);
  }

  protected override options(): Record<string, unknown> {
    return { stepSize: this.stepSize, gamma: this.gamma };
  }
}

/**
 * Cosine annealing from the base lr to `etaMin` over `tMax` steps (torch's CosineAnnealingLR,
 * closed form): etaMin + (base − etaMin)·(1 + cos(π·t / tMax)) / 2. Past tMax it rises again,
 * as in PyTorch.
 */
export class CosineAnnealingLR extends LRScheduler {
  readonly tMax: number;
  readonly etaMin: number;

  constructor(optimizer: HasParamGroups, opts: { tMax: number; etaMin?: number }) {
    super(optimizer);
    if (!(opts.tMax > 0)) throw new RangeError(`CosineAnnealingLR: tMax must be > 0, got ${opts.tMax}`);
    this.tMax = opts.tMax;
    this.etaMin = opts.etaMin ?? 0;
    this.apply();
  }

  lrAt(t: number, base: number): number {
    return this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * t) / this.tMax))) / 2;
  }

  protected override options(): Record<string, unknown> {
    return { tMax: this.tMax, etaMin: this.etaMin };
  }
}

/**
 * Cosine decay of a value from `start` (step 0) to `end` (step `total` − 1 and after), as
 * lightly's `cosine_schedule`; e.g. MoCo/BYOL's EMA momentum `cosineSchedule(step, total, 0.996, 1)`.
 * With `period`, a full cosine cycle every `period` steps instead.
 */
export function cosineSchedule(step: number, total: number, start: number, end: number, period?: number): number {
  if (step < 0) throw new RangeError(`cosineSchedule: step ${step} can't be negative`);
  if (total < 0) throw new RangeError(`cosineSchedule: total ${total} can't be negative`);
  if (period !== undefined) {
    if (!(period > 0)) throw new RangeError(`cosineSchedule: period ${period} must be >= 1`);
    return end - ((end - start) * (Math.cos((2 * Math.PI * step) / period) + 1)) / 2;
  }
  if (total <= 1 || step >= total - 1) return end;
  return end - ((end - start) * (Math.cos((Math.PI * step) / (total - 1)) + 1)) / 2;
}
