/**
 * Optimizers and LR schedules, PyTorch's semantics and defaults (`torch.optim`):
 * SGD, Adam, AdamW, LARS, gradient clipping, weight-decay parameter groups, schedules.
 */
export { Optimizer, type ParamGroup, type ParamGroupBase, type ParamGroupInput, type Params, type ParamState, type OptimizerStateDict, type HasParamGroups } from './optimizer.js';
export { SGD, type SGDOptions, type SGDHyper } from './sgd.js';
export { Adam, AdamW, type AdamOptions, type AdamHyper } from './adam.js';
export { LARS, type LARSOptions, type LARSHyper } from './lars.js';
export { clipGradNorm_, clipGradValue_ } from './clip.js';
export { paramGroupsForWeightDecay, isBiasOrNorm, type WeightDecayGroupsOptions } from './param_groups.js';
export { LRScheduler, LinearWarmupCosine, StepLR, CosineAnnealingLR, cosineSchedule, type LRSchedulerState, type LinearWarmupCosineOptions } from './lr_scheduler.js';
export * as lrScheduler from './lr_scheduler.js';
export { GradScaler, type GradScalerOptions, type GradScalerState } from './grad_scaler.js';
