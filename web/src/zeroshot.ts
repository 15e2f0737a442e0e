// Zero-shot playground: drop an image, type labels (and prompt templates), see CLIP's probabilities.
import { api, el } from './api';

export async function zeroShotPage(app: HTMLElement): Promise<void> {
  const cfg = await api<{ clip: string | null }>('/api/config');
  const model = el('input', { id: 'zs-model', value: cfg.clip ?? '', placeholder: 'CLIP folder or Hub id (dyad serve --clip)', style: { width: '100%' } }) as HTMLInputElement;
  const labels = el('input', { id: 'zs-labels', value: 'cat, dog, car, shoe', style: { width: '100%' } }) as HTMLInputElement;
  const templates = el('textarea', { id: 'zs-templates', rows: '3', placeholder: 'a photo of a {}.\n(one per line, optional; {} is the label)', style: { width: '100%' } }) as HTMLTextAreaElement;
  const file = el('input', { type: 'file', accept: 'image/*', id: 'zs-file', style: { display: 'none' } }) as HTMLInputElement;
  const preview = el('div', {}, 'Drop an image here or click to choose one');
  const drop = el('div', { class: 'drop', id: 'zs-drop', style: { minHeight: '220px', display: 'grid', placeItems: 'center' }, onclick: () => file.click() }, preview, file);
  const out = el('div', { id: 'zs-out' }, el('p', { class: 'muted' }, 'Probabilities appear here.'));
  let current: File | null = null;
  const run = async () => {
    if (!current) return;
    const fd = new FormData();
    fd.append('file', current);
    fd.append('labels', labels.value);
    fd.append('templates', templates.value);
    fd.append('model', model.value);
    out.replaceChildren(el('p', { class: 'muted' }, 'classifying…'));
    try {
      const r = await api<{ labels: string[]; probs: number[] }>('/api/zeroshot', { method: 'POST', body: fd });
      const order = r.labels.map((l, i) => [l, r.probs[i]!] as const).sort((a, b) => b[1] - a[1]);
      out.replaceChildren(el('div', { class: 'bars' }, ...order.map(([l, p], i) => el('div', { class: `bar${i === 0 ? ' top' : ''}` },
        el('span', { class: 'name' }, l), el('div', { class: 'track' }, el('div', { class: 'fill', style: { width: `${(p * 100).toFixed(1)}%` } })), el('span', { class: 'num' }, `${(p * 100).toFixed(1)}%`)))));
    } catch (e) { out.replaceChildren(el('div', { class: 'error' }, (e as Error).message)); }
  };
  const take = (f: File) => {
    current = f;
    preview.replaceChildren(el('img', { src: URL.createObjectURL(f), alt: f.name }));
    void run();
  };
  file.onchange = () => file.files?.[0] && take(file.files[0]);
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); const f = e.dataTransfer?.files[0]; if (f) take(f); });
  app.append(el('h1', {}, 'Zero-shot'), el('p', { class: 'sub' }, 'Classify an image into labels you type, with a CLIP model: no training.'),
    el('div', { class: 'grid2' },
      el('div', { class: 'card', style: { display: 'flex', flexDirection: 'column', gap: '12px' } }, drop,
        el('label', { class: 'field' }, 'labels (comma separated)', labels), el('label', { class: 'field' }, 'prompt templates', templates), el('label', { class: 'field' }, 'model', model),
        el('button', { id: 'zs-run', onclick: run }, 'Classify')),
      el('div', { class: 'card' }, el('h2', {}, 'Probabilities'), out)));
}
