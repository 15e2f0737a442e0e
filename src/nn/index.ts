/**
 * `torch.nn`: `Module`, `Parameter`, layers written over the functional ops, initialisers
 * (`nn.init`) and the functional ops themselves (`nn.functional`), with PyTorch's names and
 * defaults.
 * @example
 * class Net extends nn.Module {
 *   fc1 = new nn.Linear(784, 128);
 *   fc2 = new nn.Linear(128, 10);
 *   forward(x: Tensor): Tensor { return this.fc2.forward(this.fc1.forward(x).relu()); }
 * }
 */
export { Module, StateDictError, type StateDict, type IncompatibleKeys } from './module.js';
export { Parameter, emptyParameter, type FactoryOptions } from './parameter.js';
export { Linear, Identity, Flatten, Unflatten } from './linear.js';
export { Conv2d, ConvTranspose2d, type Conv2dOptions, type ConvTranspose2dOptions, type PaddingMode } from './conv.js';
export { BatchNormBase, BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm, type BatchNormOptions } from './normalization.js';
export { Embedding } from './embedding.js';
export { Dropout } from './dropout.js';
export { ReLU, GELU, QuickGELU, SiLU, Mish, LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax } from './activation.js';
export { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d } from './pooling.js';
export { Sequential, ModuleList } from './container.js';
export {
  MultiheadAttention, generateSquareSubsequentMask, type MultiheadAttentionOptions, type MultiheadAttentionForwardOptions,
} from './attention.js';
export * as init from './init.js';
export * as functional from '../torch/functional.js';
export { ScriptModule, TorchScriptError, isTorchScriptFile } from './script_module.js';
