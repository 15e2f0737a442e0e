/**
 * The data layer: decoding with sharp, datasets (folders, Fashion-MNIST/MNIST,
 * image-text pairs), subsets and splits. Tensors come later, in the loader.
 */
export { DataError } from './errors.js';
export type { CaptionedSample, Channels, Dataset, OnError, RawImage, Sample, WarningHandler } from './types.js';
export {
  DecodeError, configureDecoder, decodeImage, grayToRgb, imageInfo, imageSize, rgbToGray, sniffFormat,
  type DecodeOptions, type DecodeReason, type Fit, type ImageInfo, type Kernel,
} from './decode.js';
export { FileImageDataset, type FileDatasetOptions, type ValidateResult } from './file_dataset.js';
export {
  compareCodeUnits, comparePaths, extensionSet, imageExtensions, isImageFile, supportedFormats, walkImages, type WalkOptions,
} from './files.js';
export { ImageFolder, type ImageFolderOptions } from './image_folder.js';
export { FashionMNIST, IdxImageDataset, MNIST, parseIdx, readIdx, type IdxArray, type MnistOptions } from './mnist.js';
export { DataFileError, ImageTextPairs, parseCsv, readPairList, type CsvRecord, type ImageTextPairsOptions, type PairEntry } from './pairs.js';
export { Rng } from './random.js';
export { Subset, balancedSubset, randomSplit, randomSplitIndices } from './subset.js';
export {
  DataLoader, LoaderIterator, collate, commonShape, isTensorDataset, packNCHW, prepareImage, resizeRaw, stackImages,
  type Batch, type DataLoaderOptions, type ImageTarget, type LoaderStats, type TensorDataset,
} from './loader.js';
export { InMemoryDataset, type InMemoryOptions } from './memory_dataset.js';
export { PKBatchSampler } from './samplers.js';
