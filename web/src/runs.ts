// Runs list, run page (live curves over SSE, config, checkpoints, export, job), compare.
import { api, el, ago, pct, bytes, cleanup, rerenderSoon, toast, withToken } from './api';
import { lineChart } from './charts';

interface Run { name: string; method: string | null; data: string | null; backbone: string | null; epochs: number | null; epochsDone: number; lastLoss: number | null; bestKnn: number | null; status: string; updated: number; checkpoints: { name: string; size: number }[]; job: string | null; error: string | null }
interface Row { epoch: number; loss: number; lr: number; img_per_s: number; knn_top1?: number }

const describe = (r: Run) => [r.method, r.data, r.backbone].filter(Boolean).join(' · ') || (r.job ? `job ${r.job}` : '');
const pill = (s: string) => el('span', { class: `pill ${s}` }, s);

export async function runsPage(app: HTMLElement): Promise<void> {
  const runs = await api<Run[]>('/api/runs');
  const chosen = new Set<string>();
  const compare = el('button', { class: 'ghost', disabled: true, onclick: () => (location.hash = `#/compare/${[...chosen].map(encodeURIComponent).join(',')}`) }, 'Compare selected');
  app.append(
    el('div', { class: 'row' }, el('div', {}, el('h1', {}, 'Runs'), el('p', { class: 'sub' }, `${runs.length} run folder${runs.length === 1 ? '' : 's'}`)), el('div', { class: 'spacer' }), compare,
      el('a', { class: 'btn', href: '#/train' }, '+ New run')),
  );
  if (runs.length === 0) {
    app.append(el('div', { class: 'empty' }, 'No runs yet. Start one from ', el('a', { href: '#/train' }, 'Train'), ', or run dyad train --out runs/<name>.'));
    return;
  }
  const tbody = el('tbody');
  for (const r of runs) {
    const cb = el('input', { type: 'checkbox', onclick: (e: Event) => { e.stopPropagation(); (cb as HTMLInputElement).checked ? chosen.add(r.name) : chosen.delete(r.name); (compare as HTMLButtonElement).disabled = chosen.size < 2; } });
    tbody.append(el('tr', { class: 'click', 'data-run': r.name, onclick: () => (location.hash = `#/run/${encodeURIComponent(r.name)}`) },
      el('td', {}, cb), el('td', {}, el('b', {}, r.name)), el('td', {}, r.method ?? '—'), el('td', { class: 'mono' }, r.data ?? '—'), el('td', {}, r.backbone ?? '—'),
      el('td', { class: 'num' }, `${r.epochsDone}${r.epochs ? ` / ${r.epochs}` : ''}`), el('td', { class: 'num' }, r.lastLoss?.toFixed(4) ?? '—'),
      el('td', { class: 'num' }, pct(r.bestKnn)), el('td', {}, pill(r.status)), el('td', { class: 'muted' }, ago(r.updated))));
  }
  app.append(el('div', { class: 'card' }, el('table', { id: 'runs' }, el('thead', {}, el('tr', {}, ...['', 'run', 'method', 'data', 'backbone', 'epochs', 'loss', 'best kNN', 'status', 'updated'].map((h) => el('th', {}, h)))), tbody)));
}

const CHARTS: { key: keyof Row; title: string; fmt?: (v: number) => string; log?: boolean }[] = [
  { key: 'loss', title: 'loss' },
  { key: 'knn_top1', title: 'kNN top-1', fmt: (v) => `${(v * 100).toFixed(1)}%` },
  { key: 'lr', title: 'learning rate', fmt: (v) => v.toExponential(2) },
  { key: 'img_per_s', title: 'images / s', fmt: (v) => v.toFixed(0) },
];

export async function runPage(app: HTMLElement, name: string): Promise<void> {
  const { summary, config } = await api<{ summary: Run; config: Record<string, unknown> | null }>(`/api/run?name=${encodeURIComponent(name)}`);
  const status = el('span', {}, pill(summary.status));
  const bar = el('div', {}, el('div', { style: { width: '0%' } }));
  bar.className = 'progress';
  const progressText = el('span', { class: 'mono muted' });
  const errorBox = el('div');
  const cancel = el('button', { class: 'danger', id: 'cancel', style: { display: summary.status === 'running' && summary.job ? '' : 'none' }, onclick: async () => {
    (cancel as HTMLButtonElement).disabled = true;
    try { await api(`/api/jobs/${summary.job}/cancel`, { method: 'POST' }); toast('job cancelled'); } catch (e) { toast((e as Error).message, true); }
  } }, 'Cancel job');
  app.append(el('div', { class: 'row' }, el('div', {}, el('h1', {}, name), el('p', { class: 'sub' }, describe(summary))), el('div', { class: 'spacer' }), status, cancel));
  app.append(el('div', { class: 'card', style: { marginBottom: '16px' } }, el('div', { class: 'row', style: { marginBottom: '8px' } }, el('span', { id: 'epochs' }, ''), el('div', { class: 'spacer' }), progressText), bar, errorBox));

  const grid = el('div', { class: 'grid2' });
  app.append(grid);
  const setters = CHARTS.map((c) => {
    const value = el('b', {}, '—');
    const host = el('div', { class: 'chart', 'data-chart': String(c.key) });
    grid.append(el('div', { class: 'card' }, el('div', { class: 'chart-title' }, el('span', {}, c.title), value), host));
    return { c, set: lineChart(host, [c.title], { xLabel: 'epoch', fmt: c.fmt }), value };
  });
  const rows: Row[] = [];
  let reloaded = false;
  const render = () => {
    const xs = rows.map((r) => r.epoch + 1);
    for (const s of setters) {
      const ys = rows.map((r) => (typeof r[s.c.key] === 'number' ? (r[s.c.key] as number) : null));
      s.set([xs, ys]);
      const last = ys.filter((v) => v !== null).at(-1);
      s.value.textContent = last === undefined || last === null ? '—' : s.c.fmt ? s.c.fmt(last) : last.toFixed(4);
    }
    const ep = app.querySelector('#epochs')!;
    ep.textContent = `epoch ${rows.length}${summary.epochs ? ` of ${summary.epochs}` : ''}`;
    (bar.firstChild as HTMLElement).style.width = summary.epochs ? `${Math.min(100, (100 * rows.length) / summary.epochs)}%` : '0%';
  };
  const es = new EventSource(withToken(`/api/run/stream?name=${encodeURIComponent(name)}`));
  es.addEventListener('metrics', (e) => {
    const d = JSON.parse((e as MessageEvent).data) as { from: number; rows: Row[] };
    rows.length = d.from;
    rows.push(...d.rows);
    // the run folder did not exist when the page loaded: reload once for its config
    if (config === null && rows.length > 0 && !reloaded) { reloaded = true; rerenderSoon(200); }
    document.getElementById('app')!.dataset.points = String(rows.length);
    render();
  });
  es.addEventListener('status', (e) => {
    const d = JSON.parse((e as MessageEvent).data) as { status: string; progress: string | null; error: string | null };
    // the job ended: reload the page once so checkpoints and export show what it wrote
    if (summary.status === 'running' && d.status !== 'running') { summary.status = d.status; rerenderSoon(400); }
    status.replaceChildren(pill(d.status));
    progressText.textContent = d.progress ?? '';
    cancel.style.display = d.status === 'running' && summary.job ? '' : 'none';
    errorBox.replaceChildren(d.error && d.status !== 'running' ? el('div', { class: 'error', style: { marginTop: '12px' } }, d.error) : '');
  });
  cleanup.push(() => es.close());

  // config, checkpoints, export
  const cfg = el('dl', { class: 'kv' });
  for (const [k, v] of Object.entries(config ?? {})) if (v !== null && v !== undefined && typeof v !== 'object') cfg.append(el('dt', {}, k), el('dd', {}, String(v)));
  const ckpts = el('div', { class: 'bars' });
  for (const c of summary.checkpoints) {
    ckpts.append(el('div', { class: 'row' }, el('span', { class: 'mono' }, c.name), el('span', { class: 'muted' }, bytes(c.size)), el('div', { class: 'spacer' }),
      el('a', { class: 'btn ghost', href: withToken(`/api/files/runs/${name}/${c.name}`), download: c.name }, 'Download')));
  }
  const exportOut = el('div', { id: 'export-out', style: { marginTop: '10px' } });
  const best = summary.checkpoints.find((c) => c.name === 'best.safetensors') ?? summary.checkpoints.find((c) => c.name.endsWith('.safetensors'));
  const exportCard = el('div', { class: 'card' }, el('h2', {}, 'Export'),
    el('p', { class: 'muted' }, 'safetensors is the checkpoint itself (download above). ONNX runs without libtorch: onnxruntime-node, onnxruntime-web, any ONNX runtime.'),
    el('div', { class: 'row' },
      best ? el('a', { class: 'btn ghost', href: withToken(`/api/files/runs/${name}/${best.name}`), download: best.name }, 'safetensors') : '',
      el('button', { id: 'export-onnx', disabled: !best, onclick: async () => {
        exportOut.replaceChildren(el('span', { class: 'muted' }, 'exporting…'));
        try {
          const job = await api(`/api/jobs/export`, { method: 'POST', json: { run: name, checkpoint: best!.name, format: 'onnx' } });
          const poll = async (): Promise<void> => {
            const j = await api(`/api/jobs/${job.id}`);
            if (j.status === 'running') { setTimeout(poll, 700); return; }
            if (j.status === 'finished' && j.outputs.length) {
              exportOut.replaceChildren(...j.outputs.map((f: string) => el('a', { class: 'btn', href: withToken(`/api/files/runs/${f}`), download: f.split('/').pop() }, `Download ${f.split('/').pop()}`)));
            } else exportOut.replaceChildren(el('div', { class: 'error' }, j.error ?? 'export failed'));
          };
          await poll();
        } catch (e) { exportOut.replaceChildren(el('div', { class: 'error' }, (e as Error).message)); }
      } }, 'Export ONNX')),
    exportOut);
  app.append(el('div', { class: 'grid2', style: { marginTop: '16px' } },
    el('div', { class: 'card' }, el('h2', {}, 'Config'), cfg),
    el('div', { style: { display: 'flex', flexDirection: 'column', gap: '16px' } }, el('div', { class: 'card' }, el('h2', {}, 'Checkpoints'), summary.checkpoints.length ? ckpts : el('p', { class: 'muted' }, 'none yet')), exportCard)));
  if (summary.job) {
    const log = el('pre', { class: 'log' });
    app.append(el('div', { class: 'card', style: { marginTop: '16px' } }, el('h2', {}, 'Job log'), log));
    const tick = async () => { try { const j = await api(`/api/jobs/${summary.job}`); log.textContent = j.log.split('\n').slice(-40).join('\n'); log.scrollTop = 1e9; } catch { /* gone */ } };
    await tick();
    const t = setInterval(tick, 2000);
    cleanup.push(() => clearInterval(t));
  }
}

export async function comparePage(app: HTMLElement, names: string[]): Promise<void> {
  app.append(el('h1', {}, 'Compare'), el('p', { class: 'sub' }, names.join(' · ')));
  const data = await Promise.all(names.map((n) => api<{ metrics: Row[] }>(`/api/run?name=${encodeURIComponent(n)}`)));
  const grid = el('div', { class: 'grid2' });
  app.append(grid);
  for (const c of CHARTS) {
    const host = el('div', { class: 'chart' });
    grid.append(el('div', { class: 'card' }, el('div', { class: 'chart-title' }, el('span', {}, c.title)), host));
    const set = lineChart(host, names, { xLabel: 'epoch', fmt: c.fmt });
    const maxE = Math.max(0, ...data.map((d) => d.metrics.length));
    const xs = Array.from({ length: maxE }, (_, i) => i + 1);
    set([xs, ...data.map((d) => xs.map((_, i) => { const v = d.metrics[i]?.[c.key]; return typeof v === 'number' ? v : null; }))]);
  }
}
