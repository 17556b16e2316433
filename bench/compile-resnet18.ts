/**
 * resnet18 from architecture JSON + weights: compile time, session-ready time, and throughput
 * against the same model exported by torch.onnx.export (same weights, same ONNX Runtime).
 *
 *   npx tsc -p . && node dist/bench/compile-resnet18.js [--threads 1] [--iterations 40]
 *
 * Inputs are made once in bench/.cache/compile-resnet18/ by tools/torch_export.py and torch.onnx.export
 * with /usr/bin/python3 (torch + torchvision); without them only the compile time is measured,
 * on randomly initialised weights.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { compileFromFiles, initStateDict } from '../src/compiler/index.js';
import { type Session, type TensorData, createSession } from '../src/runtime/ort.js';
import { writeSafetensors } from '../src/weights/index.js';

const CACHE = join(process.cwd(), 'bench', '.cache', 'compile-resnet18');
const ARCH = join(CACHE, 'architecture.json');
const WEIGHTS = join(CACHE, 'weights.safetensors');
const PTH = join(CACHE, 'model.pth');
const TORCH_ONNX = join(CACHE, 'torch.onnx');

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const threads = arg('threads', 1);
const iterations = arg('iterations', 40);

const EXPORT_PY = `
import sys, torch, torchvision
sys.path.insert(0, "tools")
from torch_export import export
torch.manual_seed(0)
m = torchvision.models.resnet18().eval()
x = torch.randn(1, 3, 224, 224)
export(m, x, sys.argv[1], name="resnet18")
torch.save(m.state_dict(), sys.argv[1] + "/model.pth")
torch.onnx.export(m, x, sys.argv[1] + "/torch.onnx", opset_version=17, input_names=["x"], output_names=["output"],
                  dynamic_axes={"x": {0: "batch"}, "output": {0: "batch"}}, do_constant_folding=True)
`;

function prepare(): boolean {
  if (existsSync(ARCH) && existsSync(WEIGHTS) && existsSync(TORCH_ONNX) && existsSync(PTH)) return true;
  mkdirSync(CACHE, { recursive: true });
  const r = spawnSync('/usr/bin/python3', ['-c', EXPORT_PY, CACHE], { encoding: 'utf8' });
  if (r.status === 0) return true;
  console.log(`(no torch/torchvision: ${r.stderr?.trim().split('\n').pop() ?? r.error?.message}; using random weights, no torch.onnx comparison)`);
  if (!existsSync(ARCH)) copyFileSync(join(process.cwd(), 'examples', 'architectures', 'resnet18.json'), ARCH);
  writeFileSync(WEIGHTS, writeSafetensors(initStateDict(JSON.parse(readFileSync(ARCH, 'utf8')), 0)));
  return false;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** CPU ms (user + system, all threads) since `from`: unlike wall time, not inflated by other load. */
const cpuMs = (from: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1000;
};

interface CompileTimes { compile: number; session: number; compileCpu: number; sessionCpu: number; firstRequest: number }

async function timeCompile(weights: string, repeats: number): Promise<CompileTimes> {
  const runs: CompileTimes[] = [];
  for (let i = 0; i < repeats; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const model = await compileFromFiles(ARCH, weights);
    const t1 = performance.now();
    const compileCpu = cpuMs(c0);
    const c1 = process.cpuUsage();
    const s = await createSession(model.onnx, { engine: 'native', intraOpThreads: threads });
    const t2 = performance.now();
    const sessionCpu = cpuMs(c1);
    await s.run(input(1)); // the first request pays for ORT's lazy allocations
    const t3 = performance.now();
    await s.release();
    runs.push({ compile: t1 - t0, session: t2 - t1, compileCpu, sessionCpu, firstRequest: t3 - t2 });
  }
  const m = (k: keyof CompileTimes) => median(runs.map((r) => r[k]));
  return { compile: m('compile'), session: m('session'), compileCpu: m('compileCpu'), sessionCpu: m('sessionCpu'), firstRequest: m('firstRequest') };
}

function showCompile(what: string, t: CompileTimes): string {
  return `resnet18 from ${what}: compile ${t.compile.toFixed(0)} ms + session ${t.session.toFixed(0)} ms = ${(t.compile + t.session).toFixed(0)} ms wall`
    + ` (CPU ${t.compileCpu.toFixed(0)} + ${t.sessionCpu.toFixed(0)} = ${(t.compileCpu + t.sessionCpu).toFixed(0)} ms; target < 1500 ms);`
    + ` first request (batch 1) ${t.firstRequest.toFixed(0)} ms`;
}

function input(batch: number): Record<string, TensorData> {
  const data = new Float32Array(batch * 3 * 224 * 224);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37);
  return { x: { dtype: 'float32', dims: [batch, 3, 224, 224], data } };
}

/** Interleaves the two sessions so that machine noise hits both alike; returns median ms per run. */
async function compareThroughput(a: Session, b: Session, batch: number): Promise<[number, number]> {
  const feeds = input(batch);
  for (let i = 0; i < 3; i++) {
    await a.run(feeds);
    await b.run(feeds);
  }
  const ta: number[] = [];
  const tb: number[] = [];
  const timed = async (s: Session, into: number[]) => {
    const t = performance.now();
    await s.run(feeds);
    into.push(performance.now() - t);
  };
  for (let i = 0; i < iterations; i++) {
    // Alternate which runs first: the second of a pair runs on warmer caches.
    if (i % 2 === 0) {
      await timed(a, ta);
      await timed(b, tb);
    } else {
      await timed(b, tb);
      await timed(a, ta);
    }
  }
  return [median(ta), median(tb)];
}

async function main(): Promise<void> {
  const withTorch = prepare();
  await timeCompile(WEIGHTS, 1); // loads ONNX Runtime once, outside the measurement
  console.log(`load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} CPUs; medians of 5`);
  console.log(showCompile('weights.safetensors', await timeCompile(WEIGHTS, 5)));
  if (!withTorch) return;
  console.log(showCompile('model.pth', await timeCompile(PTH, 5)));

  const ours = await createSession((await compileFromFiles(ARCH, WEIGHTS)).onnx, { engine: 'native', intraOpThreads: threads });
  const theirs = await createSession(TORCH_ONNX, { engine: 'native', intraOpThreads: threads });
  const y1 = await ours.run(input(2));
  const y2 = await theirs.run(input(2));
  const d = (y1.output!.data as Float32Array).reduce((m, v, i) => Math.max(m, Math.abs(v - (y2.output!.data as Float32Array)[i]!)), 0);
  console.log(`max |nnserve - torch.onnx.export| on the same input: ${d.toExponential(2)}`);
  for (const batch of [1, 8]) {
    const [a, b] = await compareThroughput(ours, theirs, batch);
    console.log(`batch ${batch}, ${threads} thread(s): nnserve ${(1000 * batch / a).toFixed(1)} img/s, torch.onnx.export ${(1000 * batch / b).toFixed(1)} img/s, ratio ${(b / a).toFixed(3)}`);
  }
  await ours.release();
  await theirs.release();
}

await main();
