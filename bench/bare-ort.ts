/**
 * The ONNX Runtime reference for the ResNet-18 benchmark, and the memory reference: a bare Node
 * process that creates the same session nnserve's worker creates (src/runtime/ort.ts
 * createSession, native engine) and runs batches back to back. No HTTP, no worker thread.
 *
 *   node dist/bench/bare-ort.js MODEL.onnx [--batch 8] [--threads 2] [--duration S] [--warmup N] [--serve]
 *
 * Without --serve: warm up, print `READY`, run for --duration seconds, print `RESULT {json}`, exit.
 * With --serve (used by bench/run.ts so rounds can alternate with the server under test while this
 * process, like the server, stays loaded): print `READY`, then for each stdin line `RUN <seconds>`
 * run that long and print `RESULT {json}`; `EXIT` or end of input ends the process.
 *
 * RESULT: {runs, seconds, batch, images_per_s, runs_per_s, p50_ms, p99_ms, max_ms} (per batch run).
 */
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { createSession } from '../src/runtime/ort.js';
import { fixedImages } from './data.js';

function flag(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

const model = process.argv[2];
if (!model || model.startsWith('--')) {
  console.error('usage: node dist/bench/bare-ort.js MODEL.onnx [--batch 8] [--threads 2] [--duration S] [--warmup N] [--serve]');
  process.exit(2);
}
const batch = Number(flag('--batch', '8'));
const threads = Number(flag('--threads', '2'));
const warmup = Number(flag('--warmup', '3'));

const session = await createSession(model, { engine: 'native', intraOpThreads: threads });
const input = session.inputs[0]!;
const data = fixedImages(batch);
const feeds = () => ({ [input.name]: { dtype: 'float32' as const, dims: [batch, 3, 224, 224], data } });
for (let i = 0; i < warmup; i++) await session.run(feeds());

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function measure(seconds: number) {
  const lat: number[] = [];
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let now = t0;
  while (now < end) {
    const s = performance.now();
    await session.run(feeds());
    now = performance.now();
    lat.push(now - s);
  }
  const elapsed = (now - t0) / 1000;
  lat.sort((a, b) => a - b);
  return {
    engine: session.engine, runs: lat.length, seconds: elapsed, batch,
    images_per_s: (lat.length * batch) / elapsed, runs_per_s: lat.length / elapsed,
    p50_ms: pct(lat, 50), p99_ms: pct(lat, 99), max_ms: lat[lat.length - 1],
  };
}

process.stdout.write('READY\n');
if (!process.argv.includes('--serve')) {
  process.stdout.write(`RESULT ${JSON.stringify(await measure(Number(flag('--duration', '10'))))}\n`);
  await session.release();
} else {
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    const [cmd, arg] = line.trim().split(/\s+/);
    if (cmd === 'RUN') process.stdout.write(`RESULT ${JSON.stringify(await measure(Number(arg ?? 10)))}\n`);
    else if (cmd === 'EXIT') break;
  }
  rl.close();
  await session.release();
}
process.exit(0);
