// Line charts with uPlot, styled for the dark theme.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { PALETTE, cleanup } from './api';

const axis = (label?: string): uPlot.Axis => ({
  stroke: '#8b93a7', grid: { stroke: '#262e40', width: 1 }, ticks: { stroke: '#262e40', width: 1 }, font: '11px Inter, system-ui, sans-serif', label, labelFont: '11px Inter, system-ui, sans-serif',
});

/** A chart of one or more series over a shared x; returns a setter for new data. */
export function lineChart(host: HTMLElement, names: string[], o: { xLabel?: string; log?: boolean; fmt?: (v: number) => string } = {}): (data: (number | null)[][]) => void {
  const width = () => Math.max(200, host.clientWidth);
  const legend = names.length > 1 ? 34 : 0; // the legend row sits inside the host's height
  const height = () => Math.max(120, (host.clientHeight || 220) - legend);
  const opts: uPlot.Options = {
    width: width(), height: height(),
    legend: { show: names.length > 1 },
    cursor: { drag: { x: true, y: false }, points: { size: 6 } },
    scales: { x: { time: false }, y: o.log ? { distr: 3 } : {} },
    axes: [axis(o.xLabel), { ...axis(), size: 64, values: o.fmt ? (_u, vals) => vals.map((v) => (v === null ? '' : o.fmt!(v))) : undefined }],
    series: [{ label: o.xLabel ?? 'x' }, ...names.map((n, i) => ({ label: n, stroke: PALETTE[i % PALETTE.length], width: 2, points: { show: true, size: 4 }, spanGaps: true }))],
  };
  const u = new uPlot(opts, [[], ...names.map(() => [])] as unknown as uPlot.AlignedData, host);
  const ro = new ResizeObserver(() => u.setSize({ width: width(), height: height() }));
  ro.observe(host);
  cleanup.push(() => { ro.disconnect(); u.destroy(); });
  return (data) => u.setData(data as unknown as uPlot.AlignedData);
}
