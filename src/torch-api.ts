/**
 * The `dyad/torch` entry point: the tensor layer plus `nn` (modules and `nn.functional`)
 * and `optim`, arranged as PyTorch users expect (`import * as torch from 'dyad/torch'`).
 */
export * from './torch/index.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
