/**
 * `Results`: one per image from `Model.predict`, with Ultralytics' member names: `path`,
 * `origShape`, `names`, `probs` (a `Probs`), `embedding`, `speed`, plus `toJSON()` and a
 * one-line `summary()`.
 */
import { DyadError } from '../errors.js';

/** Thrown when a model is asked for something its task does not give (an embedder's `probs`). */
export class TaskError extends DyadError<'TASK'> {
  constructor(message: string) {
    super('TASK', message);
    this.name = 'TaskError';
  }
}

/** Class probabilities of one image. */
export class Probs {
  /** Probabilities, one per class, summing to 1. */
  readonly data: Float32Array;
  /** Index of the most probable class. */
  readonly top1: number;
  /** Indices of the (up to) 5 most probable classes, most probable first. */
  readonly top5: number[];
  /** Probability of `top1`. */
  readonly top1conf: number;
  /** Probabilities of `top5`, in the same order. */
  readonly top5conf: number[];

  constructor(data: Float32Array) {
    if (data.length === 0) throw new RangeError('Probs: no classes');
    this.data = data;
    const order = Array.from(data.keys()).sort((a, b) => data[b]! - data[a]! || a - b);
    this.top5 = order.slice(0, 5);
    this.top1 = this.top5[0]!;
    this.top1conf = data[this.top1]!;
    this.top5conf = this.top5.map((i) => data[i]!);
  }

  toJSON(): { top1: number; top1conf: number; top5: number[]; top5conf: number[]; data: number[] } {
    return { top1: this.top1, top1conf: this.top1conf, top5: this.top5, top5conf: this.top5conf, data: Array.from(this.data) };
  }
}

/** Milliseconds per image spent on each stage (a batch's time divided by its size). */
export interface Speed {
  preprocess: number;
  inference: number;
  postprocess: number;
}

export interface ResultsInit {
  path: string;
  origShape: [number, number];
  names: string[];
  probs: Probs | null;
  embedding: Float32Array | null;
  speed: Speed;
  /** Why `probs` is absent (the error `probs` throws). */
  noProbs?: string;
}

export class Results {
  /** The file, URL, `<buffer i>` or `<tensor i>` the image came from. */
  readonly path: string;
  /** [height, width] of the image as decoded, before resizing. */
  readonly origShape: [number, number];
  /** Class names of the model (`names[probs.top1]`); for an embedder, those of its training data, if any. */
  readonly names: string[];
  /** L2-normalised backbone features (float32), when asked for (`embed: true`, or always for an embedder). */
  readonly embedding: Float32Array | null;
  readonly speed: Speed;
  readonly #probs: Probs | null;
  readonly #noProbs: string;

  constructor(o: ResultsInit) {
    this.path = o.path;
    this.origShape = o.origShape;
    this.names = o.names;
    this.embedding = o.embedding;
    this.speed = o.speed;
    this.#probs = o.probs;
    this.#noProbs = o.noProbs ?? 'this result has no class probabilities';
  }

  /**
   * Class probabilities. Only a classifier gives them.
   * @throws TaskError for an embedder, saying how to make a classifier.
   */
  get probs(): Probs {
    if (this.#probs === null) throw new TaskError(this.#noProbs);
    return this.#probs;
  }

  /** Whether `probs` is available. */
  get hasProbs(): boolean {
    return this.#probs !== null;
  }

  /** The most probable class name, or null without probabilities. */
  get top1Name(): string | null {
    return this.#probs === null ? null : (this.names[this.#probs.top1] ?? String(this.#probs.top1));
  }

  /** A plain object for JSON: path, origShape, speed, and `probs` (+ `name`) and/or `embedding` when present. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { path: this.path, origShape: this.origShape };
    if (this.#probs !== null) {
      out.name = this.top1Name;
      out.probs = this.#probs.toJSON();
    }
    if (this.embedding !== null) out.embedding = Array.from(this.embedding);
    out.speed = this.speed;
    return out;
  }

  /** One line: `path HxW  Sneaker 0.93, Sandal 0.05, ...  1.2ms` (or the embedding's size). */
  summary(): string {
    const ms = this.speed.preprocess + this.speed.inference + this.speed.postprocess;
    const parts = [`${this.path} ${this.origShape[0]}x${this.origShape[1]}`];
    if (this.#probs !== null) {
      parts.push(this.#probs.top5.map((i, k) => `${this.names[i] ?? i} ${this.#probs!.top5conf[k]!.toFixed(2)}`).join(', '));
    }
    if (this.embedding !== null) parts.push(`embedding[${this.embedding.length}]`);
    parts.push(`${ms.toFixed(1)}ms`);
    return parts.join('  ');
  }
}
