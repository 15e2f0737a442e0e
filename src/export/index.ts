/**
 * Models in and out. Out: ONNX export (`exportOnnx` for a module, `exportNetOnnx` for a
 * checkpoint's network, `exportClipOnnx` for CLIP's two towers). In: torchvision ResNets from
 * `.pth` state dicts and `torch.save` → safetensors (the file reading itself is `torch.load`
 * in the tensor layer).
 */
export { exportOnnx, ONNX_OPSET, type ExportOnnxOptions, type MetadataValue } from './onnx/export.js';
export { exportNetOnnx, type ExportNetOptions } from './onnx/net.js';
export { exportClipOnnx, clipVisionOnnx, clipTextOnnx, type ExportClipOptions } from './onnx/clip.js';
export { ExportError, OnnxGraph, type Val } from './onnx/graph.js';
export { registerLowering, lower, type Lowering } from './onnx/lower.js';
export { decodeModel } from './onnx/proto.js';
export { loadTorchvisionResNet, loadTorchvisionClassifier, torchvisionToClassifier, convertToSafetensors } from './pytorch.js';
