/**
 * `ImageFolder`: a dataset from a folder of images, labelled by subfolder,
 * like torchvision's `datasets.ImageFolder`:
 *
 * ```
 * root/cat/001.jpg          names = ['cat', 'dog'], label 0
 * root/cat/more/002.png     (deeper folders belong to their first-level folder)
 * root/dog/003.webp         label 1
 * ```
 *
 * Layout rules (`labels: 'auto'`, the default):
 * - Images in first-level subfolders: labelled, one class per subfolder that
 *   holds images, class names sorted. Images lying directly in `root` are then
 *   ignored with a warning (as torchvision does).
 * - Images only directly in `root`: unlabeled (`names = []`, label `-1`).
 * - `labels: 'none'` takes every image under `root`, recursively, unlabeled;
 *   `labels: 'folders'` insists on class subfolders.
 * - A class subfolder without images is an error (its label would silently
 *   shift the others), unless `allowEmptyClasses` keeps it as a class with no samples.
 * - Entries whose names start with `.` are skipped (`.git`, `.DS_Store`, `._x.jpg`).
 * - Symbolic links are followed (a folder reached twice, as by a cycle, is listed once).
 *
 * Order is deterministic: by class, then by path, comparing path segments by
 * UTF-16 code units (no locale), so every machine sees the same indices.
 * Listing and the extension list are `data/files.ts`'s (`walkImages`, `imageExtensions`).
 * Bad files: see `FileImageDataset` (`onError`, `validate()`).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { compareCodeUnits, comparePaths, extensionSet, imageExtensions, walkImages } from './files.js';
import { FileImageDataset, type FileDatasetOptions } from './file_dataset.js';
import { warn, type RawImage, type Sample } from './types.js';

/** Options of `ImageFolder.open`. */
export interface ImageFolderOptions extends FileDatasetOptions {
  /** File extensions to take, case-insensitive, with or without the dot; default every format sharp reads here (`imageExtensions()`). */
  extensions?: string[];
  /** How labels are found; see the module comment. Default `'auto'`. */
  labels?: 'auto' | 'folders' | 'none';
  /** Keep class subfolders without images as classes with no samples. Default false (error). */
  allowEmptyClasses?: boolean;
  /** Decode every file once while opening (`validate()`). Default false. */
  validate?: boolean;
}

/**
 * Lists `root` once (`walkImages`): images lying directly in it, images per first-level folder
 * (every first-level folder listed, with or without images), and counts of other files by
 * extension for the "no images" error.
 */
async function scan(root: string, exts: Set<string>): Promise<{ rootImages: string[]; dirs: Map<string, string[]>; others: Map<string, number> }> {
  const others = new Map<string, number>();
  const rootImages: string[] = [];
  const dirs = new Map<string, string[]>();
  const images = await walkImages(root, {
    extensions: exts,
    onDirectory: (rel) => {
      if (!rel.includes('/')) dirs.set(rel, []);
    },
    onOther: (rel) => {
      const ext = path.extname(rel).toLowerCase() || '(none)';
      others.set(ext, (others.get(ext) ?? 0) + 1);
    },
  });
  for (const r of images) {
    const slash = r.indexOf('/');
    if (slash < 0) rootImages.push(r);
    else dirs.get(r.slice(0, slash))!.push(r);
  }
  return { rootImages, dirs, others };
}

function normaliseExtensions(exts: string[]): Set<string> {
  if (exts.length === 0) throw new RangeError('ImageFolder: extensions must not be empty');
  return extensionSet(exts);
}

/** A labelled (by first-level subfolder) or unlabeled folder of images. */
export class ImageFolder extends FileImageDataset<Sample> {
  /** Absolute path of the root folder. */
  readonly root: string;

  private constructor(root: string, paths: string[], labels: Int32Array, names: string[], opts: ImageFolderOptions) {
    super(paths, labels, names, opts);
    this.root = root;
  }

  /**
   * Scans `root` and returns the dataset. Decodes nothing unless `validate`.
   *
   * @throws Error when `root` is missing or not a folder, or holds no images;
   *   when a class folder is empty (see `allowEmptyClasses`).
   */
  static async open(root: string, opts: ImageFolderOptions = {}): Promise<ImageFolder> {
    const abs = path.resolve(root);
    let st;
    try {
      st = await fsp.stat(abs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new Error(`ImageFolder: root folder '${root}' does not exist (resolved to ${abs}). Check the path.`);
      throw new Error(`ImageFolder: cannot read root folder '${root}': ${(e as Error).message}`, { cause: e });
    }
    if (!st.isDirectory()) throw new Error(`ImageFolder: root '${root}' is a file, not a folder. Pass the folder that holds the images (or the class subfolders).`);

    const extensions = normaliseExtensions(opts.extensions ?? imageExtensions());
    const mode = opts.labels ?? 'auto';
    if (mode !== 'auto' && mode !== 'folders' && mode !== 'none') throw new RangeError(`ImageFolder: labels must be 'auto', 'folders' or 'none', got '${String(mode)}'`);
    const { rootImages, dirs, others } = await scan(abs, extensions);
    const extList = [...extensions].join(', ');
    const classDirs = [...dirs.keys()].filter((d) => dirs.get(d)!.length > 0).sort(compareCodeUnits);
    const total = rootImages.length + [...dirs.values()].reduce((n, l) => n + l.length, 0);

    if (total === 0) {
      const other = [...others].sort((a, b) => b[1] - a[1]).map(([x, n]) => `${x} (${n})`).join(', ');
      throw new Error(`ImageFolder: no images found under '${root}' (looking for ${extList}).` +
        (other ? ` Found only files with other extensions: ${other}; pass extensions: [...] if these are images.` : ' The folder is empty.') +
        ' Put images in class subfolders (root/<class>/<image>) or directly in root for an unlabeled dataset.');
    }

    let rels: string[];
    let labels: Int32Array;
    let names: string[];
    if (mode === 'none') {
      rels = [...rootImages, ...[...dirs.values()].flat()].sort(comparePaths);
      labels = new Int32Array(rels.length).fill(-1);
      names = [];
    } else if (classDirs.length === 0) {
      if (mode === 'folders') {
        throw new Error(`ImageFolder: '${root}' has no class subfolders with images (found ${rootImages.length} images directly in it). ` +
          "Move images into root/<class>/ folders, or pass labels: 'auto' or 'none' for an unlabeled dataset.");
      }
      rels = [...rootImages].sort(comparePaths);
      labels = new Int32Array(rels.length).fill(-1);
      names = [];
    } else {
      const empty = [...dirs.keys()].filter((d) => dirs.get(d)!.length === 0).sort(compareCodeUnits);
      if (empty.length > 0 && !opts.allowEmptyClasses) {
        throw new Error(`ImageFolder: class folder(s) without images under '${root}': ${empty.slice(0, 5).join(', ')}${empty.length > 5 ? `, and ${empty.length - 5} more` : ''}` +
          ` (looking for ${extList}). Add images, remove the folder(s), or pass allowEmptyClasses: true to keep them as classes with no samples.`);
      }
      names = opts.allowEmptyClasses ? [...dirs.keys()].sort(compareCodeUnits) : classDirs;
      if (rootImages.length > 0) {
        const shown = [...rootImages].sort(comparePaths).slice(0, 3).join(', ');
        warn(`ImageFolder: ignoring ${rootImages.length} image(s) directly in '${root}' (${shown}${rootImages.length > 3 ? ', ...' : ''}): ` +
          'with class subfolders present, only images inside them are used. Move them into a class folder, ' +
          "or pass labels: 'none' to use every image unlabeled.", opts.onWarning);
      }
      rels = [];
      const labelList: number[] = [];
      names.forEach((name, label) => {
        for (const r of [...dirs.get(name)!].sort(comparePaths)) {
          rels.push(r);
          labelList.push(label);
        }
      });
      labels = Int32Array.from(labelList);
    }
    const paths = rels.map((r) => path.join(abs, ...r.split('/')));
    const ds = new ImageFolder(abs, paths, labels, names, opts);
    if (opts.validate) await ds.validate();
    return ds;
  }

  protected makeSample(i: number, image: RawImage): Sample {
    return { image, label: this.labels[i]!, path: this.paths[i]!, index: i };
  }

  /** Number of samples per class, `counts[label]`. */
  classCounts(): number[] {
    const counts = new Array<number>(this.names.length).fill(0);
    for (const l of this.labels) if (l >= 0) counts[l]++;
    return counts;
  }
}
