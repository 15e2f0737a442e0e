// The studio API from the page: the token (from ?token= in the URL dyad serve printed) is kept
// in sessionStorage and sent with every call; errors become Error with the server's message.
const params = new URLSearchParams(location.search);
if (params.get('token')) sessionStorage.setItem('dyad-token', params.get('token')!);
export const token = sessionStorage.getItem('dyad-token');

export function withToken(url: string): string {
  if (!token) return url;
  return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
}

export async function api<T = any>(url: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = { ...(init.headers as Record<string, string>) };
  if (token) headers.authorization = `Bearer ${token}`;
  let body = init.body;
  if (init.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(init.json);
  }
  const r = await fetch(url, { ...init, headers, body });
  const text = await r.text();
  let data: any = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!r.ok) throw new Error(data?.error ?? `${r.status} ${r.statusText}`);
  return data as T;
}

export const thumbUrl = (table: string, id: string, size = 128) => withToken(`/api/index/${table}/thumb/${id}?size=${size}`);

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, any> = {}, ...kids: (Node | string | null | undefined | false)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'html') e.innerHTML = v;
    else if (k === 'style' && typeof v === 'object') Object.assign(e.style, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids) if (c !== null && c !== undefined && c !== false) e.append(c as Node | string);
  return e;
}

export function toast(msg: string, err = false): void {
  const t = document.getElementById('toast')!;
  t.textContent = msg;
  t.className = err ? 'err' : '';
  t.style.display = 'block';
  clearTimeout((t as any)._h);
  (t as any)._h = setTimeout(() => (t.style.display = 'none'), err ? 8000 : 3000);
}

export function ago(ms: number): string {
  if (!ms) return '—';
  const s = (Date.now() - ms) / 1000;
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(ms).toLocaleDateString();
}

export const pct = (x: number | null | undefined) => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(2)}%`);
export const bytes = (n: number) => (n > 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} kB`);

export const PALETTE = ['#7c9cff', '#ff7ab6', '#4ade80', '#fbbf24', '#38bdf8', '#c084fc', '#fb923c', '#2dd4bf', '#f87171', '#a3e635', '#e879f9', '#94a3b8'];

/** Disposers of the current page (timers, event sources), run when the route changes. */
export const cleanup: (() => void)[] = [];

/** Re-renders the current page after `ms`, unless the route changes first (the timer is a page's disposer). */
export function rerenderSoon(ms: number): void {
  const t = setTimeout(() => window.dispatchEvent(new HashChangeEvent('hashchange')), ms);
  cleanup.push(() => clearTimeout(t));
}
