// dyad studio: a hash router over the pages.
import './style.css';
import { api, cleanup, el } from './api';
import { runsPage, runPage, comparePage } from './runs';
import { trainPage } from './train';
import { explorePage } from './explore';
import { zeroShotPage } from './zeroshot';

const app = document.getElementById('app')!;

let current = 0;

/**
 * Renders the page of the hash. Each route renders into its own container, swapped in at once; a
 * route that is overtaken by a newer one (a hashchange while it awaits) renders into a detached
 * container and never touches the page.
 */
async function route(): Promise<void> {
  const generation = ++current;
  while (cleanup.length) cleanup.pop()!();
  const [page = 'runs', ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  const arg = rest.map(decodeURIComponent).join('/');
  document.querySelectorAll('#nav a').forEach((a) => a.classList.toggle('active', (a as HTMLElement).dataset.page === (page === 'run' || page === 'compare' ? 'runs' : page)));
  const view = el('div', { class: 'view' });
  app.replaceChildren(view);
  app.dataset.page = page;
  delete app.dataset.ready;
  try {
    if (page === 'run') await runPage(view, arg);
    else if (page === 'compare') await comparePage(view, arg.split(','));
    else if (page === 'train') await trainPage(view);
    else if (page === 'explore') await explorePage(view, arg || undefined);
    else if (page === 'zeroshot') await zeroShotPage(view);
    else await runsPage(view);
  } catch (e) {
    view.append(el('div', { class: 'error' }, (e as Error).message));
  }
  if (generation === current) app.dataset.ready = '1';
}

window.addEventListener('hashchange', () => void route());
void route();
api<{ runs: string; db: string }>('/api/config').then((c) => {
  document.getElementById('nav-foot')!.replaceChildren(el('div', {}, 'runs: ', c.runs), el('div', { style: { marginTop: '4px' } }, 'db: ', c.db));
}).catch(() => undefined);
