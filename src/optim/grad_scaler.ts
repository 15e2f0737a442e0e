/**
 * `GradScaler`: dynamic loss scaling for float16 mixed precision, as `torch.cuda.amp.GradScaler`
 * (Micikevicius et al. 2018, "Mixed Precision Training", §3.2). The loss is multiplied by
 * `scale` before backward so small float16 gradients do not flush to zero; `unscale_` divides
 * the gradients back and looks for inf/NaN; `step` skips the optimizer step when it found one;
 * `update` halves the scale (`backoffFactor`) after a skipped step and doubles it
 * (`growthFactor`) after `growthInterval` steps in a row without one. Defaults are PyTorch's:
 * 2**16, 2.0, 0.5, 2000.
 *
 *   const scaler = new GradScaler();
 *   scaler.scale(loss).backward(); scaler.step(optimizer); scaler.update(); optimizer.zeroGrad();
 *
 * bfloat16 has float32's exponent range and needs no scaler (PyTorch's advice too).
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { HasParamGroups } from './optimizer.js';

export interface GradScalerOptions {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
  /** false: `scale` returns the loss, `step` always steps, `update` does nothing. */
  enabled?: boolean;
}
export interface GradScalerState { scale: number; growthFactor: number; backoffFactor: number; growthInterval: number; growthTracker: number }

type Steppable = HasParamGroups & { step(): unknown };

export class GradScaler {
  private scaleValue: number;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  readonly enabled: boolean;
  private growthTracker = 0;
  /** Per optimizer since the last `update`: unscaled already, and whether an inf/NaN was found. */
  private perOptimizer = new Map<Steppable, { unscaled: boolean; foundInf: boolean; stepped: boolean }>();

  constructor(opts: GradScalerOptions = {}) {
    this.scaleValue = opts.initScale ?? 2 ** 16;
    this.growthFactor = opts.growthFactor ?? 2.0;
    this.backoffFactor = opts.backoffFactor ?? 0.5;
    this.growthInterval = opts.growthInterval ?? 2000;
    this.enabled = opts.enabled ?? true;
    if (!(this.scaleValue > 0)) throw new RangeError(`GradScaler: initScale must be > 0, got ${this.scaleValue}`);
    if (!(this.growthFactor > 1)) throw new RangeError(`GradScaler: growthFactor must be > 1, got ${this.growthFactor}`);
    if (!(this.backoffFactor > 0 && this.backoffFactor < 1)) throw new RangeError(`GradScaler: backoffFactor must be in (0, 1), got ${this.backoffFactor}`);
    if (!(Number.isInteger(this.growthInterval) && this.growthInterval >= 1)) throw new RangeError(`GradScaler: growthInterval must be an integer ≥ 1, got ${this.growthInterval}`);
  }

  /** The current scale (PyTorch's `get_scale()`); 1 when disabled. */
  getScale(): number { return this.enabled ? this.scaleValue : 1; }

  /** `loss × scale` (a new tensor; the loss itself when disabled). */
  scale(loss: Tensor): Tensor {
    return this.enabled ? loss.mul(this.scaleValue) : loss;
  }

  /** Divides every gradient of `optimizer` by the scale in place and records whether any is inf/NaN. Once per step. */
  unscale_(optimizer: Steppable): void {
    if (!this.enabled) return;
    const s = this.stateOf(optimizer);
    if (s.unscaled) throw new Error('GradScaler.unscale_: already called on this optimizer since the last update()');
    const inv = 1 / this.scaleValue;
    const worst = torch.noGrad(() => torch.scope(() => {
      const peaks: Tensor[] = [];
      for (const g of optimizer.paramGroups) {
        for (const p of g.params) {
          const grad = p.grad;
          if (grad === null) continue;
          grad.mul_(inv);
          peaks.push(grad.abs().max().float()); // NaN propagates through max, inf stays inf
        }
      }
      return peaks.length === 0 ? 0 : torch.stack(peaks).max().item();
    }));
    s.unscaled = true;
    s.foundInf = !Number.isFinite(worst);
  }

  /** Unscales (unless done) and steps the optimizer, unless a gradient was inf/NaN; returns whether it stepped. */
  step(optimizer: Steppable): boolean {
    if (!this.enabled) {
      optimizer.step();
      return true;
    }
    const s = this.stateOf(optimizer);
    if (s.stepped) throw new Error('GradScaler.step: already called on this optimizer since the last update()');
    if (!s.unscaled) this.unscale_(optimizer);
    s.stepped = true;
    if (s.foundInf) return false;
    optimizer.step();
    return true;
  }

  /** After the step(s): back off after an inf/NaN, grow after `growthInterval` good steps; `newScale` sets it directly. */
  update(newScale?: number): void {
    if (!this.enabled) return;
    if (newScale !== undefined) {
      this.scaleValue = newScale;
    } else if (this.perOptimizer.size > 0) {
      const foundInf = [...this.perOptimizer.values()].some((s) => s.foundInf);
      if (foundInf) {
        this.scaleValue *= this.backoffFactor;
        this.growthTracker = 0;
      } else if (++this.growthTracker === this.growthInterval) {
        this.scaleValue *= this.growthFactor;
        this.growthTracker = 0;
      }
    }
    this.perOptimizer.clear();
  }

  stateDict(): GradScalerState {
    return { scale: this.scaleValue, growthFactor: this.growthFactor, backoffFactor: this.backoffFactor, growthInterval: this.growthInterval, growthTracker: this.growthTracker };
  }
  loadStateDict(s: Pick<GradScalerState, 'scale' | 'growthTracker'>): void {
    this.scaleValue = s.scale;
    this.growthTracker = s.growthTracker;
  }

  private stateOf(optimizer: Steppable): { unscaled: boolean; foundInf: boolean; stepped: boolean } {
    let s = this.perOptimizer.get(optimizer);
    if (!s) this.perOptimizer.set(optimizer, (s = { unscaled: false, foundInf: false, stepped: false }));
    return s;
  }
}
