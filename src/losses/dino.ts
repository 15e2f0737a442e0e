/**
 * DINO loss (Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers",
 * Algorithm 1 and §3.1; lightly's `DINOLoss`): cross-entropy between the teacher's centred,
 * sharpened distribution and the student's, over every (teacher view, student view) pair of
 * different views.
 *
 * `forward(teacherOut, studentOut, epoch)`: `teacherOut` is a list of T [B, D] outputs (the
 * global views), `studentOut` a list of S [B, D] outputs (the same global views first, then the
 * local ones) → scalar
 *
 *   L = 1 / (B·(T·S − T)) · Σ_{t, s: s ≠ t} Σ_b −softmax((g_t,b − c) / τ_t) · log_softmax(s_s,b / τ_s)
 *
 * - τ_s, the student temperature: 0.1.
 * - τ_t, the teacher temperature: linear from `warmupTeacherTemp` to `teacherTemp` over the first
 *   `warmupTeacherTempEpochs` epochs (numpy's linspace, so epoch W − 1 has `teacherTemp`), then
 *   `teacherTemp` (0.04 → 0.04 over 30 epochs in lightly; the paper warms 0.04 → 0.07).
 * - c, the centre [1, D] (a buffer, so checkpoints keep it): after each forward,
 *   c ← m·c + (1 − m)·mean over the teacher's views and batch, with m = `centerMomentum` (0.9).
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

const F = torch.functional;

export interface DINOLossOptions {
  /** D, the projection head's output size. Default 65536 (the paper's). */
  outputDim?: number;
  /** τ_t at epoch 0. Default 0.04. */
  warmupTeacherTemp?: number;
  /** τ_t after the warm-up. Default 0.04. */
  teacherTemp?: number;
  /** Epochs of the linear warm-up. Default 30. */
  warmupTeacherTempEpochs?: number;
  /** τ_s. Default 0.1. */
  studentTemp?: number;
  /** m of the centre's moving average. Default 0.9. */
  centerMomentum?: number;
}

export class DINOLoss extends nn.Module {
  readonly outputDim: number;
  readonly warmupTeacherTemp: number;
  readonly teacherTemp: number;
  readonly warmupTeacherTempEpochs: number;
  readonly studentTemp: number;
  readonly centerMomentum: number;
  /** The centre c [1, D]. */
  declare center: Tensor;

  constructor(opts: DINOLossOptions = {}) {
    super();
    this.outputDim = opts.outputDim ?? 65536;
    this.warmupTeacherTemp = opts.warmupTeacherTemp ?? 0.04;
    this.teacherTemp = opts.teacherTemp ?? 0.04;
    this.warmupTeacherTempEpochs = opts.warmupTeacherTempEpochs ?? 30;
    this.studentTemp = opts.studentTemp ?? 0.1;
    this.centerMomentum = opts.centerMomentum ?? 0.9;
    if (!Number.isInteger(this.outputDim) || this.outputDim < 1) throw new RangeError(`DINOLoss: outputDim must be a positive integer, got ${this.outputDim}`);
    for (const [k, v] of [['warmupTeacherTemp', this.warmupTeacherTemp], ['teacherTemp', this.teacherTemp], ['studentTemp', this.studentTemp]] as const) {
      if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`DINOLoss: ${k} must be a positive number, got ${v}`);
    }
    if (!Number.isInteger(this.warmupTeacherTempEpochs) || this.warmupTeacherTempEpochs < 0) {
      throw new RangeError(`DINOLoss: warmupTeacherTempEpochs must be a non-negative integer, got ${this.warmupTeacherTempEpochs}`);
    }
    if (!(this.centerMomentum >= 0 && this.centerMomentum <= 1)) throw new RangeError(`DINOLoss: centerMomentum must be in [0, 1], got ${this.centerMomentum}`);
    this.registerBuffer('center', torch.zeros([1, this.outputDim]));
  }

  /** τ_t of `epoch` (see the module comment). */
  teacherTemperature(epoch: number): number {
    const w = this.warmupTeacherTempEpochs;
    if (epoch >= w) return this.teacherTemp;
    if (w === 1) return this.warmupTeacherTemp;
    return this.warmupTeacherTemp + ((this.teacherTemp - this.warmupTeacherTemp) * epoch) / (w - 1);
  }

  forward(teacherOut: Tensor[], studentOut: Tensor[], epoch = 0): Tensor {
    if (teacherOut.length < 1 || studentOut.length < 1) throw new RangeError('DINOLoss: pass at least one teacher and one student output');
    const shape = teacherOut[0]!.shape;
    for (const t of [...teacherOut, ...studentOut]) {
      if (t.shape.length !== 2 || t.shape.join() !== shape.join()) throw new RangeError(`DINOLoss: every output must be [B, ${this.outputDim}] and alike, got [${t.shape}] and [${shape}]`);
    }
    if (shape[1] !== this.outputDim) throw new RangeError(`DINOLoss: outputs have ${shape[1]} dims, the loss was built for outputDim ${this.outputDim}`);
    const T = teacherOut.length;
    const S = studentOut.length;
    if (T * S - Math.min(T, S) === 0) throw new RangeError('DINOLoss: need at least one pair of different teacher and student views');
    const b = shape[0]!;
    const tau = this.teacherTemperature(epoch);
    const loss = torch.scope(() => {
      const teacher = torch.stack(teacherOut).detach(); // [T, B, D]
      const t = F.softmax(teacher.sub(this.center).div(tau), -1);
      const s = F.logSoftmax(torch.stack(studentOut).div(this.studentTemp), -1); // [S, B, D]
      const pairs = torch.einsum('tbd,sbd->ts', t, s).neg(); // [T, S]
      const mask = torch.eye(T, S, { dtype: 'bool', device: pairs.device }).logicalNot(); // view i of the teacher vs view i of the student left out
      return pairs.maskedFill(mask.logicalNot(), 0).sum().div((T * S - Math.min(T, S)) * b);
    });
    this.updateCenter(teacherOut);
    return loss;
  }

  /** c ← m·c + (1 − m)·mean of the teacher outputs (over views and batch). */
  updateCenter(teacherOut: Tensor[]): void {
    torch.scope(() => torch.noGrad(() => {
      const batchCenter = torch.cat(teacherOut, 0).detach().mean(0, { keepdim: true });
      this.center.mul_(this.centerMomentum).add_(batchCenter.mul(1 - this.centerMomentum));
    }));
  }
}
