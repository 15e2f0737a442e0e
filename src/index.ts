/**
 * dyad: contrastive representation learning for TypeScript. The tensor layer is `dyad/torch`;
 * this entry point holds what is built on it.
 */
export * as torch from './torch-api.js';
export { DyadError, ERROR_CODES, isDyadError, type DyadErrorCode } from './errors.js';
export { TorchError, DisposedTensorError } from './torch/errors.js';
export { SafetensorsError } from './torch/safetensors.js';
export { StateDictError } from './nn/module.js';
export { DataError } from './data/errors.js';
export { DecodeError } from './data/decode.js';
export { DataFileError } from './data/pairs.js';
export { NTXentLoss, type NTXentLossOptions } from './losses/ntxent.js';
export { DCLLoss, DCLWLoss, type DCLLossOptions } from './losses/dcl.js';
export { MemoryBank } from './losses/memory_bank.js';
export { NegativeCosineSimilarity, type NegativeCosineSimilarityOptions } from './losses/negative_cosine.js';
export { BarlowTwinsLoss, type BarlowTwinsLossOptions } from './losses/barlow_twins.js';
export { VICRegLoss, type VICRegLossOptions } from './losses/vicreg.js';
export { DINOLoss, type DINOLossOptions } from './losses/dino.js';
export { SupConLoss, type SupConLossOptions } from './losses/supcon.js';
export { TripletMarginLoss, type TripletMarginLossOptions } from './losses/triplet_margin.js';
export { TripletLoss, TRIPLET_MININGS, type TripletMining, type TripletLossOptions } from './losses/triplet.js';
export * from './models/index.js';
export * from './methods/index.js';
export { train, loadMethod, buildMethod, buildTransform, type TrainResult, type TrainHooks, type EpochMetrics } from './engine/trainer.js';
export { fit, TrainingDivergedError, type FitSpec, type FitResult, type EpochRow, type StepInput, type StepEnd, type LoopCallbacks, type RunFolder } from './engine/loop.js';
export { mergeOptions, lenient } from './engine/options.js';
export { defaultConfig, resolveConfig, backboneSpec, type TrainConfig } from './engine/config.js';
export { knnScores, knnAccuracy, type KNNOptions } from './engine/knn.js';
export { saveCheckpoint, loadCheckpoint, CheckpointError, type CheckpointMeta } from './engine/checkpoint.js';
export * as data from './data/index.js';
export * as transforms from './transforms/index.js';
export * from './models/clip/index.js';
export { CLIPLoss, type CLIPLossOptions } from './losses/clip.js';
export { CLIP, type CLIPBatch, type CLIPMethodOptions } from './methods/clip.js';
export { trainClip, resolveClipConfig, defaultClipConfig, retrievalRecall, type ClipTrainConfig, type ClipTrainResult, type ClipEpochMetrics, type ClipPairs } from './engine/clip_trainer.js';
export { Model, Results, Probs, TaskError, SourceError, type Source, type ModelOverrides, type PredictArgs, type ValArgs, type ClassifyArgs, type TrainArgs, type ValMetrics } from './api/index.js';
export { Classifier } from './models/classifier.js';
export { Index, IndexError, ThumbnailEmbedder, writeDuplicatesReport, type Embedder, type SearchHit, type DuplicateGroup } from './search/index.js';
