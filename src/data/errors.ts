/**
 * `DataError`: a dataset that cannot be used as asked (a missing or empty folder, no class
 * subfolders where labels are needed, classes that differ from the model's). Thrown by the
 * engine, the API and the CLI alike; the message names the data and the fix. Errors about one
 * file have their own classes: `DecodeError` (an image) and `DataFileError` (a pair list line).
 */
import { DyadError } from '../errors.js';

export class DataError extends DyadError<'DATA'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DATA', message, options);
    this.name = 'DataError';
  }
}
