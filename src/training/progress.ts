/**
 * What a person watching `nnserve train` sees: a progress bar redrawn in place on a terminal
 * (epoch, step, loss, samples/s, ETA), one summary line per epoch, and the closing metrics.
 * Without a terminal (CI logs, pipes) the bar is printed as a plain line every `plainEveryMs`.
 */
import type { EpochMetrics, EvalMetrics, StepProgress } from './train-result.js';

/** 75 -> "1:15", 3725 -> "1:02:05". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export function formatLoss(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4) ? v.toExponential(3) : v.toFixed(4);
}

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;

/** `epoch 2/5 [#########...........] 412/938 loss 0.3127 | 4,812 samples/s | ETA 0:42` */
export function formatProgress(p: StepProgress, barWidth = 24): string {
  const filled = p.steps > 0 ? Math.min(barWidth, Math.round((p.step / p.steps) * barWidth)) : 0;
  const bar = '#'.repeat(filled) + '.'.repeat(barWidth - filled);
  const width = String(p.steps).length;
  return `epoch ${p.epoch}/${p.epochs} [${bar}] ${String(p.step).padStart(width)}/${p.steps} loss ${formatLoss(p.loss)} | ${Math.round(p.samplesPerSecond).toLocaleString('en-US')} samples/s | ETA ${formatDuration(p.etaSeconds)}`;
}

/** `epoch 2/5  train_loss 0.3127  train_acc 88.61%  val_loss 0.3301  val_acc 88.02%  lr 0.001  12.3 s` */
export function formatEpoch(m: EpochMetrics, epochs: number): string {
  const parts = [`epoch ${m.epoch}/${epochs}`, `train_loss ${formatLoss(m.train_loss)}`];
  if (m.train_accuracy !== undefined) parts.push(`train_acc ${pct(m.train_accuracy)}`);
  if (m.val_loss !== undefined) parts.push(`val_loss ${formatLoss(m.val_loss)}`);
  if (m.val_accuracy !== undefined) parts.push(`val_acc ${pct(m.val_accuracy)}`);
  parts.push(`lr ${Number(m.lr.toPrecision(4))}`, `${m.seconds.toFixed(1)} s`);
  return parts.join('  ');
}

/** `test: loss 0.2871  accuracy 90.12% (10000 samples)` */
export function formatEval(label: string, e: EvalMetrics): string {
  return `${label}: loss ${formatLoss(e.loss)}${e.accuracy !== undefined ? `  accuracy ${pct(e.accuracy)}` : ''} (${e.samples} samples)`;
}

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Draws the bar on `stream`; `line()` prints a permanent line above it. */
export class ProgressBar {
  private drawn = false;
  private lastPlain = Date.now();

  constructor(private readonly stream: ProgressStream, private readonly plainEveryMs = 10_000) {}

  update(p: StepProgress): void {
    const text = formatProgress(p);
    if (this.stream.isTTY) {
      const cols = this.stream.columns ?? 120;
      this.stream.write(`\r${text.slice(0, cols - 1)}\x1b[K`);
      this.drawn = true;
    } else if (Date.now() - this.lastPlain >= this.plainEveryMs) {
      this.lastPlain = Date.now();
      this.stream.write(`${text}\n`);
    }
  }

  /** Erases the bar (on a terminal) and writes `text` as its own line. */
  line(text: string, to: ProgressStream = this.stream): void {
    this.clear();
    to.write(`${text}\n`);
  }

  clear(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}
