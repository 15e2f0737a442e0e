# Reference for dyad's CLIP embedding benchmark (bench/clip.ts): the CLIP ViT-B/32 architecture
# in plain torch.nn, as Hugging Face's modeling_clip.py computes it in eager mode (separate
# q/k/v/out projections, scaled q, bmm, additive causal mask, softmax, quick_gelu MLP, pre-LN),
# on the same libtorch that Debian's libtorch-dev ships (/usr/bin/python3 has python3-torch).
# Reads the SAME weights dyad uses: a safetensors file with HF names (parsed here with numpy,
# since python3-safetensors is not in Debian 12).
#
# Usage: /usr/bin/python3 clip_reference.py WEIGHTS.safetensors CONFIG.json [image_batch=32] [text_batch=256] [iters=3] [threads=2] [--serve]
# Prints one JSON line: images_per_s, texts_per_s (no_grad, eval). Compare only with a dyad
# run in the same session: the machine is shared and noisy. With --serve it prints "ready", then
# answers each stdin line "image" or "text" with the seconds of one forward pass, so that
# bench/clip.ts can interleave dyad's and PyTorch's passes (both see the same background load).
import json, struct, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

serve = '--serve' in sys.argv
argv = [a for a in sys.argv if a != '--serve']
weights, config = argv[1], argv[2]
image_batch = int(argv[3]) if len(argv) > 3 else 32
text_batch = int(argv[4]) if len(argv) > 4 else 256
iters = int(argv[5]) if len(argv) > 5 else 3
threads = int(argv[6]) if len(argv) > 6 else 2
torch.set_num_threads(threads)
cfg = json.load(open(config))
tc, vc = cfg['text_config'], cfg['vision_config']


def load_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dt = {'F32': np.float32, 'I64': np.int64, 'F16': np.float16}
    out = {}
    for k, v in header.items():
        if k == '__metadata__':
            continue
        s, e = v['data_offsets']
        out[k] = torch.from_numpy(np.frombuffer(data, dtype=dt[v['dtype']], count=(e - s) // np.dtype(dt[v['dtype']]).itemsize, offset=s).reshape(v['shape']).copy())
    return out


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h, self.hd, self.scale = h, d // h, (d // h) ** -0.5
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x, mask=None):
        b, l, d = x.shape
        sh = lambda t: t.view(b, l, self.h, self.hd).transpose(1, 2).contiguous().view(b * self.h, l, self.hd)
        q, k, v = sh(self.q_proj(x) * self.scale), sh(self.k_proj(x)), sh(self.v_proj(x))
        w = torch.bmm(q, k.transpose(1, 2))
        if mask is not None:
            w = (w.view(b, self.h, l, l) + mask).view(b * self.h, l, l)
        o = torch.bmm(F.softmax(w, dim=-1), v).view(b, self.h, l, self.hd).transpose(1, 2).reshape(b, l, d)
        return self.out_proj(o)


class MLP(nn.Module):
    def __init__(self, d, m, act):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, m), nn.Linear(m, d)
        self.act = QuickGELU() if act == 'quick_gelu' else nn.GELU()

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c['hidden_size']
        self.self_attn = Attention(d, c['num_attention_heads'])
        self.layer_norm1 = nn.LayerNorm(d, eps=c.get('layer_norm_eps', 1e-5))
        self.mlp = MLP(d, c['intermediate_size'], c.get('hidden_act', 'quick_gelu'))
        self.layer_norm2 = nn.LayerNorm(d, eps=c.get('layer_norm_eps', 1e-5))

    def forward(self, x, mask=None):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layers = nn.ModuleList([Layer(c) for _ in range(c['num_hidden_layers'])])

    def forward(self, x, mask=None):
        for l in self.layers:
            x = l(x, mask)
        return x


class TextEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.token_embedding = nn.Embedding(c['vocab_size'], c['hidden_size'])
        self.position_embedding = nn.Embedding(c['max_position_embeddings'], c['hidden_size'])


class Text(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings, self.encoder = TextEmbeddings(c), Encoder(c)
        self.final_layer_norm = nn.LayerNorm(c['hidden_size'], eps=c.get('layer_norm_eps', 1e-5))
        self.eos = c.get('eos_token_id', 49407)

    def forward(self, ids):
        n, l = ids.shape
        x = self.embeddings.token_embedding(ids) + self.embeddings.position_embedding.weight[:l]
        mask = torch.full((l, l), float('-inf')).triu(1)[None, None]
        x = self.final_layer_norm(self.encoder(x, mask))
        idx = ids.argmax(-1) if self.eos == 2 else (ids == self.eos).int().argmax(-1)
        return x[torch.arange(n), idx]


class VisionEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, p = c['hidden_size'], c['patch_size']
        self.class_embedding = nn.Parameter(torch.zeros(d))
        self.patch_embedding = nn.Conv2d(c.get('num_channels', 3), d, p, p, bias=False)
        self.position_embedding = nn.Embedding((c['image_size'] // p) ** 2 + 1, d)


class Vision(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c['hidden_size']
        self.embeddings = VisionEmbeddings(c)
        self.pre_layrnorm, self.encoder, self.post_layernorm = nn.LayerNorm(d), Encoder(c), nn.LayerNorm(d)

    def forward(self, px):
        e = self.embeddings
        x = e.patch_embedding(px).flatten(2).transpose(1, 2)
        x = torch.cat([e.class_embedding.expand(px.shape[0], 1, -1), x], 1) + e.position_embedding.weight[None]
        return self.post_layernorm(self.encoder(self.pre_layrnorm(x))[:, 0])


class CLIP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.text_model, self.vision_model = Text(tc), Vision(vc)
        self.visual_projection = nn.Linear(vc['hidden_size'], cfg['projection_dim'], bias=False)
        self.text_projection = nn.Linear(tc['hidden_size'], cfg['projection_dim'], bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(2.6592))

    def image(self, px):
        return F.normalize(self.visual_projection(self.vision_model(px)), dim=-1)

    def text(self, ids):
        return F.normalize(self.text_projection(self.text_model(ids)), dim=-1)


model = CLIP(cfg).eval()
sd = {k: v for k, v in load_safetensors(weights).items() if not k.endswith('position_ids')}
model.load_state_dict(sd, strict=True)
torch.manual_seed(0)
px = torch.randn(image_batch, 3, vc['image_size'], vc['image_size'])
ids = torch.randint(1, 49000, (text_batch, tc['max_position_embeddings']))
ids[:, 0] = 49406
ids[:, -1] = 49407


def rate(fn, n):
    with torch.no_grad():
        fn()
        t = time.perf_counter()
        for _ in range(iters):
            fn()
        return n * iters / (time.perf_counter() - t)


if serve:
    run = {'image': lambda: model.image(px), 'text': lambda: model.text(ids)}
    print('ready', flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd not in run:
            break
        with torch.no_grad():
            t = time.perf_counter()
            run[cmd]()
            print(time.perf_counter() - t, flush=True)
    sys.exit(0)

print(json.dumps({'torch': torch.__version__, 'threads': threads, 'images_per_s': rate(lambda: model.image(px), image_batch),
                  'texts_per_s': rate(lambda: model.text(ids), text_batch)}))
