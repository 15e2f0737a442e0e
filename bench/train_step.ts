/**
 * One SimCLR training step of a CIFAR-style ResNet-18 (3×3 stem, no max-pool, width
 * multiplier, 1-channel 28×28 input, projection head to 128-d, NT-Xent τ=0.5, SGD momentum 0.9),
 * the same model and step as ../shared/bench/torch_reference.py (PyTorch eager), which this
 * runs in the same session for the ratio. img_per_s counts both views.
 * Flags: --width 16 --batch 256 --threads 2 --steps 5 --variants separate,concat,channels-last
 *        --device cpu|cuda|cuda:N (on a GPU, the reference runs there too: bench/reference/on_device.py)
 */
import * as torch from '../src/torch/index.js';
import { SimCLR } from '../src/methods/simclr.js';
import { ResNet } from '../src/models/resnet.js';
import { SGD } from '../src/optim/index.js';
import { emit, machine, num, runReference } from './common.js';

function measure(o: { width: number; batch: number; steps: number; concat: boolean; channelsLast: boolean; size: number; channels: number; device: string }): number {
  torch.manualSeed(0);
  const model = new SimCLR(new ResNet({ depth: 18, stem: o.size <= 64 ? 'cifar' : 'imagenet', width: o.width, inChannels: o.channels }), { hiddenDim: 512, outputDim: 128, temperature: 0.5, concatViews: o.concat });
  // channels-last: conv weights too, as PyTorch's model.to(memory_format=torch.channels_last)
  if (o.device !== 'cpu') model.to(o.device);
  if (o.channelsLast) model.to({ memoryFormat: 'channelsLast' });
  const opt = new SGD(model.parameters(), { lr: 0.06, momentum: 0.9, weightDecay: 5e-4 });
  const input = (): torch.Tensor => torch.scope(() => torch.randn([o.batch, o.channels, o.size, o.size]).to(o.device).keep());
  const x1 = input();
  const x2 = input();
  const fmt = (x: torch.Tensor): torch.Tensor => (o.channelsLast ? x.contiguous('channelsLast') : x);
  const step = (): number => torch.scope(() => {
    opt.zeroGrad();
    const loss = model.trainingStep([fmt(x1), fmt(x2)], { step: 0, totalSteps: 1, epoch: 0 });
    loss.backward();
    opt.step();
    return loss.item();
  });
  step();
  const t0 = performance.now();
  for (let i = 0; i < o.steps; i++) step();
  const s = (performance.now() - t0) / 1000 / o.steps;
  model.dispose();
  opt.dispose();
  x1.dispose();
  x2.dispose();
  return (2 * o.batch) / s;
}

export async function main(args: Record<string, unknown>): Promise<void> {
  const width = num(args.width, 16);
  const batch = num(args.batch, 256);
  const threads = num(args.threads, 2);
  const steps = num(args.steps, 5);
  const variants = String(args.variants ?? 'separate,concat,channels-last').split(',');
  // --size/--channels measure other resolutions (ImageNet stem above 64 px); the PyTorch
  // reference exists for the 28×28×1 case only.
  const size = num(args.size, 28);
  const channels = num(args.channels, 1);
  const device = String(args.device ?? 'cpu');
  if (device !== 'cpu' && !torch.cudaIsAvailable()) throw new Error(`--device ${device}: this libtorch has no CUDA or sees no GPU; build the addon against a CUDA torch (LIBTORCH_USE_PYTORCH=1 npm run build:native)`);
  torch.setNumThreads(threads);
  const noRef = Boolean(args['no-reference']) || size !== 28 || channels !== 1;
  // PyTorch as it runs by default, and with the OpenMP/OpenBLAS settings dyad chose (common.ts)
  const ref = noRef ? null : runReference('torch_reference.py', [width, batch, steps, threads], 'default', device);
  const refDyadEnv = noRef || device !== 'cpu' ? null : runReference('torch_reference.py', [width, batch, steps, threads], 'dyad');
  const rate = (line: string | null): number | null => (line ? Number(/img_per_s=([\d.]+)/.exec(line)?.[1]) : null);
  const refImgPerS = rate(ref);
  const refDyadEnvImgPerS = rate(refDyadEnv);
  for (const v of variants) {
    const imgPerS = measure({ width, batch, steps, concat: v !== 'separate', channelsLast: v === 'channels-last', size, channels, device });
    emit({ bench: 'train-step', device, variant: v, size, channels, width, batch, threads, img_per_s: Number(imgPerS.toFixed(1)),
      torch_img_per_s: refImgPerS, ratio: refImgPerS ? Number((imgPerS / refImgPerS).toFixed(3)) : null,
      torch_dyad_env_img_per_s: refDyadEnvImgPerS, ratio_dyad_env: refDyadEnvImgPerS ? Number((imgPerS / refDyadEnvImgPerS).toFixed(3)) : null, ...machine() });
  }
  if (ref) console.error(`reference: ${ref}\nreference with dyad's environment: ${refDyadEnv}`);
}
