/**
 * The loss curves of a run as a picture (the seed's 5.9 / 6.6 plt.plot of the losses): training
 * loss over windows of steps, training and validation loss per epoch, against the epoch. The
 * y axis turns logarithmic when the losses span more than two decades (a regression run that
 * goes from 30 to 1e-4). Drawn as SVG, rasterised to PNG by src/preprocess/svg.ts.
 */
import { svgToPng } from '../preprocess/svg.js';
import type { TrainResult } from './train-result.js';

interface Series {
  label: string;
  color: string;
  points: [number, number][];
  width: number;
  dots: boolean;
}

const W = 800;
const H = 480;
const M = { left: 78, right: 24, top: 44, bottom: 54 };

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** 1, 2, 5 x 10^k steps giving about `count` ticks over [lo, hi]. */
function niceTicks(lo: number, hi: number, count: number): number[] {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(0) : String(Number(v.toPrecision(3)));
}

export function lossCurveSvg(r: Pick<TrainResult, 'model' | 'epochs' | 'step_loss'>): string {
  const series: Series[] = [
    { label: 'train loss (steps)', color: '#9ecae1', points: r.step_loss, width: 1.2, dots: false },
    { label: 'train loss (epoch)', color: '#1f77b4', points: r.epochs.map((e) => [e.epoch, e.train_loss]), width: 2.2, dots: true },
  ];
  const val = r.epochs.filter((e) => e.val_loss !== undefined).map((e): [number, number] => [e.epoch, e.val_loss!]);
  if (val.length > 0) series.push({ label: 'validation loss (epoch)', color: '#ff7f0e', points: val, width: 2.2, dots: true });

  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  const xMax = Math.max(1, ...r.epochs.map((e) => e.epoch));
  let yMin = ys.length ? Math.min(...ys) : 0;
  let yMax = ys.length ? Math.max(...ys) : 1;
  const log = yMin > 0 && yMax / yMin > 100;
  let yTicks: number[];
  if (log) {
    const lo = Math.floor(Math.log10(yMin));
    const hi = Math.ceil(Math.log10(yMax));
    yMin = 10 ** lo;
    yMax = 10 ** hi;
    yTicks = Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));
  } else {
    yMin = Math.min(0, yMin);
    if (yMax === yMin) yMax = yMin + 1;
    yTicks = niceTicks(yMin, yMax, 6);
    // Round the top up to the next tick, so the highest point is not on the frame.
    const step = yTicks.length > 1 ? yTicks[1]! - yTicks[0]! : yMax - yMin;
    if (yTicks[yTicks.length - 1]! < yMax) yTicks.push(Number((yTicks[yTicks.length - 1]! + step).toPrecision(12)));
    yMax = yTicks[yTicks.length - 1]!;
  }
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number) => M.left + (x / xMax) * pw;
  const sy = (y: number) => {
    const f = log ? (Math.log10(y) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin)) : (y - yMin) / (yMax - yMin);
    return M.top + ph - f * ph;
  };
  const xTicks = niceTicks(0, xMax, Math.min(10, xMax)).filter((t) => Number.isInteger(t));

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Lato, sans-serif">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="26" font-size="17" text-anchor="middle">${escape(`${r.model}: loss`)}</text>`);
  for (const t of yTicks) {
    const y = sy(t).toFixed(1);
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${M.left - 8}" y="${y}" font-size="12" text-anchor="end" dominant-baseline="middle">${formatTick(t)}</text>`);
  }
  for (const t of xTicks) {
    const x = sx(t).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${M.top}" y2="${M.top + ph}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${x}" y="${M.top + ph + 18}" font-size="12" text-anchor="middle">${t}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 12}" font-size="13" text-anchor="middle">epoch</text>`);
  out.push(`<text x="18" y="${M.top + ph / 2}" font-size="13" text-anchor="middle" transform="rotate(-90 18 ${M.top + ph / 2})">loss${log ? ' (log scale)' : ''}</text>`);
  for (const s of series) {
    const pts = s.points.filter((p) => Number.isFinite(p[1]) && (!log || p[1] > 0));
    if (pts.length === 0) continue;
    const path = pts.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${path}" fill="none" stroke="${s.color}" stroke-width="${s.width}" stroke-linejoin="round"/>`);
    if (s.dots) for (const p of pts) out.push(`<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="3.5" fill="${s.color}"/>`);
  }
  series.forEach((s, i) => {
    const y = M.top + 16 + i * 20;
    const x = W - M.right - 210;
    out.push(`<line x1="${x}" x2="${x + 26}" y1="${y}" y2="${y}" stroke="${s.color}" stroke-width="${s.width + 0.8}"/>`);
    out.push(`<text x="${x + 34}" y="${y}" font-size="12" dominant-baseline="middle">${escape(s.label)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

export function lossCurvePng(r: Pick<TrainResult, 'model' | 'epochs' | 'step_loss'>): Promise<Buffer> {
  return svgToPng(lossCurveSvg(r));
}
