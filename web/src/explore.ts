// Dataset explorer for a search index: the 2-D map (regl-scatterplot) coloured by label or split,
// hover thumbnails, click for nearest neighbours, SQL filter, search by image (upload or drop) and
// by text (CLIP), duplicate groups with a threshold slider, files that failed to decode.
import createScatterplot from 'regl-scatterplot';
import { api, el, thumbUrl, cleanup, toast, PALETTE, token } from './api';

interface Info { table: string; dataset: string; model: string; dim: number; rows: number; weights: string | null }
interface Hit { id: string; path: string; label: string | null; split: string | null; score: number }
interface MapData { method: string; ids: string[]; x: number[]; y: number[]; labels: (string | null)[]; splits: (string | null)[] }

const base = (p: string) => p.split(/[\\/]/).pop() ?? p;

function thumbGrid(table: string, hits: Hit[], query?: { id?: string; src?: string; label?: string | null }): HTMLElement {
  const g = el('div', { class: 'thumbs', id: 'results' });
  if (query) g.append(el('div', { class: 'thumb query', title: 'query' }, el('img', { src: query.src ?? thumbUrl(table, query.id!, 128), alt: 'query' }), el('div', { class: 'cap' }, el('span', { class: 'l' }, query.label ?? 'query'), el('span', { class: 's' }, 'query'))));
  for (const h of hits) {
    g.append(el('div', { class: 'thumb hit', title: `${h.path}\n${h.label ?? ''} ${h.split ?? ''}\nscore ${h.score.toFixed(4)}` },
      el('img', { src: thumbUrl(table, h.id, 128), alt: base(h.path), loading: 'lazy' }),
      el('div', { class: 'cap' }, el('span', { class: 'l' }, h.label ?? base(h.path)), el('span', { class: 's' }, h.score.toFixed(3)))));
  }
  if (!hits.length) g.append(el('div', { class: 'muted' }, 'no matches'));
  return g;
}

export async function explorePage(app: HTMLElement, wanted?: string): Promise<void> {
  const infos = await api<Info[]>('/api/indexes');
  app.append(el('h1', {}, 'Explore'));
  if (!infos.length) {
    app.append(el('p', { class: 'sub' }, ''), el('div', { class: 'empty' }, 'No search index in the database. Build one: dyad index --weights runs/<run>/best.safetensors --data <folder of images>'));
    return;
  }
  const info = infos.find((i) => i.table === wanted) ?? infos[0]!;
  const t = info.table;
  const pick = el('select', { onchange: (e: Event) => (location.hash = `#/explore/${(e.target as HTMLSelectElement).value}`) }, ...infos.map((i) => el('option', { value: i.table, selected: i.table === t }, `${i.dataset} · ${i.rows} rows · ${i.dim}-d`)));
  app.append(el('p', { class: 'sub row' }, pick, el('span', { class: 'mono muted' }, info.weights ?? info.model)));

  const where = el('input', { id: 'where', placeholder: "SQL filter, e.g. label = 'blob' AND split = 'val'", style: { flex: '1', minWidth: '260px' } }) as HTMLInputElement;
  const text = el('input', { id: 'text', placeholder: 'search by text (CLIP indexes): a red shoe', style: { width: '280px' } }) as HTMLInputElement;
  const status = el('span', { class: 'muted', id: 'filter-status' });
  app.append(el('div', { class: 'row', style: { marginBottom: '14px' } }, where, el('button', { class: 'ghost', onclick: () => applyFilter() }, 'Filter'), status, el('div', { class: 'spacer' }),
    text, el('button', { class: 'ghost', onclick: () => textSearch() }, 'Search')));

  const tabs = el('div', { class: 'tabs' });
  const body = el('div');
  app.append(tabs, body);
  const side = el('div', { style: { display: 'flex', flexDirection: 'column', gap: '12px' } });
  const results = el('div', { class: 'card', id: 'side-results' }, el('h2', {}, 'Neighbours'), el('p', { class: 'muted' }, 'Click a point on the map, or drop an image above.'));
  const file = el('input', { type: 'file', accept: 'image/*', id: 'upload', style: { display: 'none' } }) as HTMLInputElement;
  const drop = el('div', { class: 'drop', id: 'drop', onclick: () => file.click() }, 'Drop an image here or click to search by image', file);
  side.append(drop, results);

  const showHits = (title: string, hits: Hit[], query?: { id?: string; src?: string; label?: string | null }) => {
    results.replaceChildren(el('h2', {}, title), thumbGrid(t, hits, query));
  };
  const searchImage = async (f: File) => {
    const fd = new FormData();
    fd.append('file', f);
    fd.append('limit', '24');
    if (where.value.trim()) fd.append('where', where.value.trim());
    results.replaceChildren(el('h2', {}, 'Searching…'));
    try {
      const r = await api<{ hits: Hit[] }>(`/api/index/${t}/search-image`, { method: 'POST', body: fd });
      showHits(`${r.hits.length} matches for ${f.name}`, r.hits, { src: URL.createObjectURL(f), label: f.name });
    } catch (e) { results.replaceChildren(el('h2', {}, 'Image search'), el('div', { class: 'error' }, (e as Error).message)); }
  };
  file.onchange = () => file.files?.[0] && searchImage(file.files[0]);
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); const f = e.dataTransfer?.files[0]; if (f) void searchImage(f); });

  const textSearch = async () => {
    if (!text.value.trim()) return;
    results.replaceChildren(el('h2', {}, 'Searching…'));
    try {
      const r = await api<{ hits: Hit[] }>(`/api/index/${t}/search-text`, { method: 'POST', json: { text: text.value.trim(), limit: 24, ...(where.value.trim() ? { where: where.value.trim() } : {}) } });
      showHits(`“${text.value.trim()}”`, r.hits);
    } catch (e) { results.replaceChildren(el('h2', {}, 'Text search'), el('div', { class: 'error' }, (e as Error).message)); }
  };
  text.addEventListener('keydown', (e) => e.key === 'Enter' && textSearch());
  where.addEventListener('keydown', (e) => e.key === 'Enter' && applyFilter());

  let map: MapData | null = null;
  let mapMethod = 'pca';
  let plot: ReturnType<typeof createScatterplot> | null = null;
  const applyFilter = async () => {
    const w = where.value.trim();
    try {
      const r = await api<{ total: number; ids: string[] }>(`/api/index/${t}/ids?where=${encodeURIComponent(w)}`);
      status.textContent = w ? `${r.total} of ${info.rows} rows match` : '';
      if (plot && map) {
        if (!w) plot.unfilter();
        else {
          const keep = new Set(r.ids);
          plot.filter(map.ids.flatMap((id, i) => (keep.has(id) ? [i] : [])));
        }
      }
    } catch (e) { status.textContent = ''; toast((e as Error).message, true); }
  };

  const showMap = async () => {
    const colorBy = el('select', { id: 'color-by' }, el('option', { value: 'label' }, 'colour by label'), el('option', { value: 'split' }, 'colour by split')) as HTMLSelectElement;
    const methodPick = el('select', { id: 'map-method', onchange: () => { mapMethod = methodPick.value; while (cleanup.length) cleanup.pop()!(); showMap().catch((x) => body.replaceChildren(el('div', { class: 'error' }, (x as Error).message))); } },
      ...['pca', 'umap'].map((v) => el('option', { value: v, selected: v === mapMethod }, v.toUpperCase()))) as HTMLSelectElement;
    const wrap = el('div', { class: 'mapwrap', id: 'map' });
    const canvas = el('canvas');
    const tip = el('div', { class: 'tip' });
    const legend = el('div', { class: 'legend' });
    const loading = el('div', { class: 'empty', style: { position: 'absolute', inset: '40% 30% auto', border: '0' } }, 'computing the map…');
    wrap.append(canvas, tip, legend, loading);
    const mapInfo = el('span', { class: 'muted' });
    body.replaceChildren(el('div', { class: 'explore' }, el('div', {}, el('div', { class: 'row', style: { marginBottom: '8px' } }, methodPick, colorBy, mapInfo), wrap), side));
    map = await api<MapData>(`/api/index/${t}/map?method=${mapMethod}`);
    loading.remove();
    const m = map;
    mapInfo.textContent = `${m.method.toUpperCase()} of ${m.ids.length} embeddings · scroll to zoom · drag to pan · click a point`;
    const span = (v: number[]) => { let lo = Infinity, hi = -Infinity; for (const a of v) { if (a < lo) lo = a; if (a > hi) hi = a; } return [lo, hi] as const; };
    const [x0, x1] = span(m.x);
    const [y0, y1] = span(m.y);
    const s = 1.8 / Math.max(x1 - x0 || 1, y1 - y0 || 1);
    const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    const { width, height } = wrap.getBoundingClientRect();
    plot = createScatterplot({ canvas, width, height, pointSize: m.ids.length > 20000 ? 2 : m.ids.length > 2000 ? 4 : 10, backgroundColor: [0.035, 0.047, 0.07, 1], opacity: 0.85,
      pointColorHover: [1, 1, 1, 1], pointOutlineWidth: 2, lassoOnLongPress: true, deselectOnDblClick: true } as any);
    const p = plot;
    const draw = async () => {
      const cats = colorBy.value === 'split' ? m.splits : m.labels;
      const names = [...new Set(cats.map((c) => c ?? '(none)'))].sort();
      const idx = new Map(names.map((n, i) => [n, i]));
      const points = m.ids.map((_, i) => [(m.x[i]! - cx) * s, (m.y[i]! - cy) * s, idx.get(cats[i] ?? '(none)')!, 0]);
      p.set({ colorBy: 'valueA', pointColor: names.map((_, i) => PALETTE[i % PALETTE.length]!) } as any);
      await p.draw(points as any);
      legend.replaceChildren(...names.slice(0, 24).map((n, i) => el('span', {}, el('i', { style: { background: PALETTE[i % PALETTE.length] } }), n)));
      wrap.dataset.drawn = String(points.length);
    };
    colorBy.onchange = () => void draw();
    await draw();
    // for tests and the curious: where point i is on screen (CSS pixels inside the canvas)
    (window as any).__dyadMap = { n: m.ids.length, screen: (i: number) => (p as any).getScreenPosition(i) as [number, number] };
    let mouse = { x: 0, y: 0 };
    wrap.addEventListener('mousemove', (e) => { const r = wrap.getBoundingClientRect(); mouse = { x: e.clientX - r.left, y: e.clientY - r.top }; tip.style.left = `${Math.min(mouse.x + 14, r.width - 140)}px`; tip.style.top = `${Math.min(mouse.y + 14, r.height - 150)}px`; });
    p.subscribe('pointOver', (i: number) => {
      tip.replaceChildren(el('img', { src: thumbUrl(t, m.ids[i]!, 128) }), el('div', {}, `${m.labels[i] ?? '—'}${m.splits[i] ? ` · ${m.splits[i]}` : ''}`));
      tip.style.display = 'block';
    });
    p.subscribe('pointOut', () => (tip.style.display = 'none'));
    p.subscribe('select', async ({ points }: { points: number[] }) => {
      if (points.length !== 1) return;
      const id = m.ids[points[0]!]!;
      const w = where.value.trim();
      results.replaceChildren(el('h2', {}, 'Neighbours…'));
      try {
        const r = await api<{ query: Hit; hits: Hit[] }>(`/api/index/${t}/similar/${id}?limit=24${w ? `&where=${encodeURIComponent(w)}` : ''}`);
        showHits(`Nearest neighbours of ${base(r.query.path)}`, r.hits, { id, label: r.query.label });
      } catch (e) { results.replaceChildren(el('div', { class: 'error' }, (e as Error).message)); }
    });
    const ro = new ResizeObserver(() => { const b = wrap.getBoundingClientRect(); p.set({ width: b.width, height: b.height } as any); });
    ro.observe(wrap);
    cleanup.push(() => { ro.disconnect(); p.destroy(); plot = null; });
    if (where.value.trim()) void applyFilter();
  };

  const showDuplicates = async () => {
    const slider = el('input', { type: 'range', min: '0.80', max: '1', step: '0.005', value: '0.95', id: 'threshold', style: { width: '260px' } }) as HTMLInputElement;
    const val = el('b', { class: 'mono' }, '0.950');
    const out = el('div', { id: 'dups' });
    body.replaceChildren(el('div', { class: 'card' }, el('div', { class: 'row', style: { marginBottom: '14px' } }, el('span', {}, 'cosine similarity ≥'), slider, val, el('span', { class: 'muted', id: 'dup-count' })), out));
    let h = 0;
    const load = async () => {
      val.textContent = Number(slider.value).toFixed(3);
      out.replaceChildren(el('p', { class: 'muted' }, 'finding duplicates…'));
      const w = where.value.trim();
      try {
        const r = await api<{ groups: { size: number; maxSimilarity: number; minSimilarity: number; members: (Hit & { similarity: number })[] }[] }>(`/api/index/${t}/duplicates?threshold=${slider.value}${w ? `&where=${encodeURIComponent(w)}` : ''}`);
        app.querySelector('#dup-count')!.textContent = `${r.groups.length} groups, ${r.groups.reduce((a, g) => a + g.size, 0)} files`;
        out.replaceChildren(...(r.groups.length ? r.groups.slice(0, 100).map((g, i) => el('div', { class: 'group' },
          el('div', { class: 'muted', style: { marginBottom: '6px' } }, `group ${i + 1} · ${g.size} files · similarity ${g.minSimilarity.toFixed(3)}–${g.maxSimilarity.toFixed(3)}`),
          thumbGrid(t, g.members.map((m) => ({ ...m, score: m.similarity }))))) : [el('div', { class: 'empty' }, 'No duplicates at this threshold.')]));
      } catch (e) { out.replaceChildren(el('div', { class: 'error' }, (e as Error).message)); }
    };
    slider.oninput = () => { val.textContent = Number(slider.value).toFixed(3); clearTimeout(h); h = window.setTimeout(load, 300); };
    await load();
  };

  const showFailed = async () => {
    body.replaceChildren(el('p', { class: 'muted' }, 'checking the files…'));
    const r = await api<{ root: string | null; files: { path: string; error: string }[] }>(`/api/index/${t}/failed`);
    body.replaceChildren(el('div', { class: 'card' }, el('h2', {}, `Files under ${r.root ?? '?'} that are not in the index`),
      r.files.length ? el('table', { id: 'failed' }, el('thead', {}, el('tr', {}, el('th', {}, 'file'), el('th', {}, 'error'))), el('tbody', {}, ...r.files.map((f) => el('tr', {}, el('td', { class: 'mono' }, f.path), el('td', { class: 'mono', style: { color: '#ffb4bd' } }, f.error)))))
        : el('div', { class: 'empty' }, 'Every image file under the folder is in the index.')));
  };

  const pages: [string, () => Promise<void>][] = [['Map', showMap], ['Duplicates', showDuplicates], ['Failed files', showFailed]];
  for (const [name, f] of pages) {
    tabs.append(el('button', { 'data-tab': name, onclick: (e: Event) => {
      tabs.querySelectorAll('button').forEach((b) => b.classList.remove('active'));
      (e.target as HTMLElement).classList.add('active');
      while (cleanup.length) cleanup.pop()!();
      f().catch((x) => body.replaceChildren(el('div', { class: 'error' }, (x as Error).message)));
    } }, name));
  }
  (tabs.firstChild as HTMLElement).classList.add('active');
  void token;
  await showMap();
}
