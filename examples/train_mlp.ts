// A small network in TypeScript, trained with dyad's tensors, nn and optim: the loss falls.
// Run: npm run demo
import * as torch from '../src/torch-api.js';
import { nn, optim } from '../src/torch-api.js';
import type { Tensor } from '../src/torch-api.js';

class MLP extends nn.Module {
  fc1 = new nn.Linear(2, 32);
  fc2 = new nn.Linear(32, 2);
  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.fc1.forward(x).relu());
  }
}

torch.manualSeed(0);
// Two interleaved spirals: class 0 and class 1.
const n = 512;
const t = torch.linspace(0, 3 * Math.PI, n / 2);
const spiral = (sign: number): Tensor => torch.stack([t.mul(t.cos()).mul(sign), t.mul(t.sin()).mul(sign)], 1).div(10);
const x = torch.cat([spiral(1), spiral(-1)]).add(torch.randn([n, 2]).mul(0.02)).keep();
const y = torch.cat([torch.zeros([n / 2], { dtype: 'int64' }), torch.ones([n / 2], { dtype: 'int64' })]).keep();

const model = new MLP();
const opt = new optim.AdamW(model.parameters(), { lr: 0.01, weightDecay: 0 });
for (let step = 0; step <= 1000; step++) {
  const [loss, acc] = torch.scope(() => {
    const logits = model.forward(x);
    const loss = nn.functional.crossEntropy(logits, y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    return [loss.item(), logits.argmax(1).eq(y).float().mean().item()];
  });
  if (step % 200 === 0) console.log(`step ${step}  loss ${loss.toFixed(4)}  accuracy ${(acc * 100).toFixed(1)}%  live tensors ${torch.memory().count}`);
}
