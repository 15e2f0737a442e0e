// The train form: every option of `dyad train` (read from the CLI by the server), started as a
// job in a child process; recent jobs below with their state.
import { api, el, ago, toast } from './api';

interface Field { name: string; kind: 'flag' | 'choice' | 'value'; help: string; default: string | number | boolean | null; choices: string[] | null; negate: boolean }

const MAIN = ['method', 'data', 'epochs', 'batch', 'backbone', 'width', 'image-size', 'optimizer', 'lr', 'knn-every', 'max-steps-per-epoch', 'seed'];

export async function trainPage(app: HTMLElement): Promise<void> {
  const fields = await api<Field[]>('/api/train/fields');
  const inputs = new Map<string, HTMLInputElement | HTMLSelectElement>();
  const mk = (f: Field) => {
    let input: HTMLInputElement | HTMLSelectElement;
    if (f.kind === 'flag') {
      input = el('input', { type: 'checkbox', name: f.name });
      return { node: el('label', { class: 'field', title: f.help }, el('span', { class: 'row' }, input, `--${f.name}`), el('span', { class: 'help' }, f.help)), input };
    }
    if (f.kind === 'choice') {
      input = el('select', { name: f.name }, ...(f.default === null ? [el('option', { value: '' }, '(default)')] : []), ...f.choices!.map((c) => el('option', { value: c, selected: c === String(f.default) }, c)));
    } else input = el('input', { name: f.name, placeholder: f.default === null ? 'default' : String(f.default) });
    return { node: el('label', { class: 'field', title: f.help }, `--${f.name}`, input, el('span', { class: 'help' }, f.help.length > 90 ? f.help.slice(0, 88) + '…' : f.help)), input };
  };
  const main = el('div', { class: 'form' });
  const adv = el('div', { class: 'form' });
  for (const f of [...fields].sort((a, b) => (MAIN.indexOf(a.name) + 1 || 99) - (MAIN.indexOf(b.name) + 1 || 99))) {
    const { node, input } = mk(f);
    inputs.set(f.name, input);
    (MAIN.includes(f.name) ? main : adv).append(node);
  }
  const run = el('input', { name: 'run', value: `run-${new Date().toISOString().slice(5, 16).replace(/[-:T]/g, '')}`, style: { width: '260px' } });
  const err = el('div');
  const submit = el('button', { id: 'start', type: 'submit' }, 'Start training');
  const form = el('form', { onsubmit: async (e: Event) => {
    e.preventDefault();
    const options: Record<string, string | boolean> = {};
    for (const f of fields) {
      const i = inputs.get(f.name)!;
      if (f.kind === 'flag') { if ((i as HTMLInputElement).checked) options[f.name] = true; } else if (i.value.trim() !== '' && i.value !== String(f.default ?? '')) options[f.name] = i.value.trim();
    }
    (submit as HTMLButtonElement).disabled = true;
    err.replaceChildren();
    try {
      const job = await api('/api/jobs/train', { method: 'POST', json: { run: (run as HTMLInputElement).value.trim(), options } });
      toast(`started job ${job.id}`);
      location.hash = `#/run/${encodeURIComponent(job.run)}`;
    } catch (x) {
      err.replaceChildren(el('div', { class: 'error', style: { marginTop: '12px' } }, (x as Error).message));
    } finally { (submit as HTMLButtonElement).disabled = false; }
  } },
    el('div', { class: 'card' }, el('div', { class: 'row', style: { marginBottom: '16px' } }, el('label', { class: 'field' }, 'run folder (under --runs)', run), el('div', { class: 'spacer' }), submit), main,
      el('details', { style: { marginTop: '16px' } }, el('summary', { class: 'muted', style: { cursor: 'pointer', marginBottom: '12px' } }, `advanced (${adv.childElementCount} more options)`), adv), err));
  app.append(el('h1', {}, 'Train'), el('p', { class: 'sub' }, 'Same options as dyad train. The job runs in its own process; it keeps going if you close the page.'), form);

  const jobs = await api<any[]>('/api/jobs');
  if (jobs.length) {
    const tb = el('tbody');
    for (const j of jobs.slice(0, 20)) {
      tb.append(el('tr', { class: 'click', onclick: () => (location.hash = `#/run/${encodeURIComponent(j.run)}`) }, el('td', { class: 'mono' }, j.id), el('td', {}, j.kind), el('td', {}, j.run),
        el('td', {}, el('span', { class: `pill ${j.status}` }, j.status)), el('td', { class: 'mono muted' }, j.progress ?? (j.error ?? '').slice(0, 80)), el('td', { class: 'muted' }, ago(j.started))));
    }
    app.append(el('div', { class: 'card', style: { marginTop: '16px' } }, el('h2', {}, 'Jobs'), el('table', {}, el('thead', {}, el('tr', {}, ...['job', 'kind', 'run', 'status', 'progress', 'started'].map((h) => el('th', {}, h)))), tb)));
  }
}
