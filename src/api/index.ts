/** The product API: `Model` (predict, embed, train, val, linearProbe, finetune, setClasses), `Results`, sources, the task table, CLIP's task and search embedder. */
export { Model, type ModelOverrides } from './model.js';
export { Results, Probs, TaskError, type Speed } from './results.js';
export { SourceError, expandSources, fetchImage, globImages, loadItem, type Source, type SourceItem, type FetchOptions } from '../data/sources.js';
export { TASKS, type TaskEntry } from './tasks.js';
export { Net, loadNet, clipNet, type Task, type NetConfig } from './net.js';
export { ZeroShotPredictor, ZeroShotValidator, CLIPTrainer, zeroShot, clipHint, type ZeroShotOptions } from './clip.js';
export { CLIPEmbedder, type CLIPEmbedderOptions } from './clip_embedder.js';
export { Predictor, EmbedderPredictor, ClassifierPredictor, embedderHint } from './predictor.js';
export { Validator, EmbedderValidator, ClassifierValidator, type ValMetrics } from './validator.js';
export { Trainer, EmbedderTrainer, ClassifierTrainer, freshRunDir, type TrainOutcome } from './trainer.js';
export {
  PREDICT_DEFAULTS, VAL_DEFAULTS, CLASSIFY_DEFAULTS, mergeArgs,
  type PredictArgs, type ValArgs, type ClassifyArgs, type TrainArgs, type TrainExtras,
} from './args.js';
