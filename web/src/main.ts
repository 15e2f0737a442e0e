// dyad studio: a hash router over the pages.
import './style.css';
import { api, cleanup, el } from './api';
import { runsPage, runPage, comparePage } from './runs';
import { trainPage } from './train';
import { explorePage } from './explore';
import { zeroShotPage } from './zeroshot';

const app = document.getElementById('app')!;

async function route(): Promise<void> {
  while (cleanup.length) cleanup.pop()!();
  const [page = 'runs', ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  const arg = rest.map(decodeURIComponent).join('/');
  document.querySelectorAll('#nav a').forEach((a) => a.classList.toggle('active', (a as HTMLElement).dataset.page === (page === 'run' || page === 'compare' ? 'runs' : page)));
  app.replaceChildren();
  app.dataset.page = page;
  delete app.dataset.ready;
  try {
    if (page === 'run') await runPage(app, arg);
    else if (page === 'compare') await comparePage(app, arg.split(','));
    else if (page === 'train') await trainPage(app);
    else if (page === 'explore') await explorePage(app, arg || undefined);
    else if (page === 'zeroshot') await zeroShotPage(app);
    else await runsPage(app);
  } catch (e) {
    app.append(el('div', { class: 'error' }, (e as Error).message));
  }
  app.dataset.ready = '1';
}

window.addEventListener('hashchange', () => void route());
void route();
api<{ runs: string; db: string }>('/api/config').then((c) => {
  document.getElementById('nav-foot')!.replaceChildren(el('div', {}, 'runs: ', c.runs), el('div', { style: { marginTop: '4px' } }, 'db: ', c.db));
}).catch(() => undefined);
