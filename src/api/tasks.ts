/**
 * The task table (Ultralytics' `task_map`): for each task, the classes `Model` delegates to.
 * A new task is one more row here (CLIP's was: `clip.ts`).
 */
import type { TrainConfig } from '../engine/config.js';
import type { Net, Task } from './net.js';
import type { PredictArgs, TrainExtras, ValArgs } from './args.js';
import { ClassifierPredictor, EmbedderPredictor, type Predictor } from './predictor.js';
import { ClassifierTrainer, EmbedderTrainer, type Trainer } from './trainer.js';
import { ClassifierValidator, EmbedderValidator, type Validator } from './validator.js';
import { CLIPTrainer, ZeroShotPredictor, ZeroShotValidator } from './clip.js';

export interface TaskEntry {
  trainer: new (net: Net | null, config: Partial<TrainConfig>, extras: TrainExtras) => Trainer;
  predictor: new (net: Net, args: PredictArgs) => Predictor;
  validator: new (net: Net, args: ValArgs) => Validator;
}

export const TASKS: Record<Task, TaskEntry> = {
  embedder: { trainer: EmbedderTrainer, predictor: EmbedderPredictor, validator: EmbedderValidator },
  classifier: { trainer: ClassifierTrainer, predictor: ClassifierPredictor, validator: ClassifierValidator },
  clip: { trainer: CLIPTrainer, predictor: ZeroShotPredictor, validator: ZeroShotValidator },
};
