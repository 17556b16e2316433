/**
 * JPEG -> top-5 through HTTP for a ResNet-18-sized model, against in-process ONNX Runtime on
 * already-preprocessed tensors, in the same run (rounds alternate so both see the same machine).
 *
 *   npm run build && node dist/bench/image-classifier.js [--rounds 3] [--duration 15] [--image FILE] [--quick]
 *
 * nnserve: `nnserve start` in its own process serving bench/.cache/resnet18.onnx (random weights,
 * bench/make_resnet18.py) with the image_classifier handler and its default transform (Resize
 * 256, CenterCrop 224, Normalize ImageNet; Pillow-exact resampling), minWorkers 1, batchSize 8,
 * maxBatchDelay 10, 2 intra-op threads; wrk (one thread, c=8) POSTs the JPEG as the raw body.
 * Reference: bench/bare-ort.ts (the same createSession, batch 8, 2 threads, no HTTP, no decoding).
 * The seed tutorial's Flask + TorchScript server did 45.7 req/s on this machine shape.
 * Prints a table, then one JSON line per figure (`BENCH {...}`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  cpuMs, freePort, NODE_FLAGS, log, machineBusyMs, median, r, ROOT, runWrk, startChild, table, waitHttpOk, waitQuiet, CORES, type WrkResult,
} from './lib.js';

function flag(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}
const QUICK = process.argv.includes('--quick');
const ROUNDS = Number(flag('--rounds', QUICK ? '1' : '3'));
const DURATION_S = Number(flag('--duration', QUICK ? '5' : '15'));
const WARMUP_S = QUICK ? 3 : 5;
const IMAGE = flag('--image', join(ROOT, 'test/fixtures/images/chelsea.jpg'));
const CONCURRENCY = 8;
const WORKERS = Number(flag('--workers', '1'));
const BATCH = Number(flag('--batch', '8'));
const SEED_FLASK_RPS = 45.7;
const CACHE = join(ROOT, 'bench/.cache');
const LOGS = join(CACHE, 'logs', `image-${new Date().toISOString().replace(/[:.]/g, '-')}`);
const CLI = join(ROOT, 'dist/src/cli.js');

const emit = (o: Record<string, unknown>) => console.log(`BENCH ${JSON.stringify(o)}`);

function prepare(): { onnx: string; store: string } {
  mkdirSync(LOGS, { recursive: true });
  const onnx = join(CACHE, 'resnet18.onnx');
  if (!existsSync(onnx)) {
    log('making bench/.cache/resnet18.onnx (bench/make_resnet18.py)');
    const p = spawnSync('/usr/bin/python3', [join(ROOT, 'bench/make_resnet18.py'), CACHE], { stdio: 'inherit', cwd: ROOT });
    if (p.status !== 0 || !existsSync(onnx)) throw new Error('bench/make_resnet18.py failed');
  }
  const cfgDir = join(CACHE, 'resnet18-image-config');
  const store = join(CACHE, 'store-resnet18-image');
  mkdirSync(cfgDir, { recursive: true });
  const cfg = join(cfgDir, 'model-config.yaml');
  writeFileSync(cfg, `minWorkers: ${WORKERS}\nmaxWorkers: ${WORKERS}\nbatchSize: ${BATCH}\nmaxBatchDelay: 10\nresponseTimeout: 120\n`);
  const p = spawnSync(process.execPath, [CLI, 'archive', '--model-name', 'resnet18', '--version', '1.0', '--serialized-file', onnx,
    '--handler', 'image_classifier', '--config-file', cfg, '--export-path', store, '-f'], { stdio: 'inherit', cwd: ROOT });
  if (p.status !== 0) throw new Error('archiving resnet18 failed');
  return { onnx, store };
}

interface Round<T> { res: T; cpu_ms: number; main_ms: number; other_pct: number; wall_ms: number }

/** Run once the machine is quiet; record the target's CPU and how busy the rest of the machine was. */
async function measure<T>(pid: number, run: () => Promise<T>, clientCpu: (t: T) => number = () => 0): Promise<Round<T>> {
  await waitQuiet(15, QUICK ? 10 : 30);
  const m0 = machineBusyMs();
  const c0 = cpuMs(pid);
  const t0 = performance.now();
  const res = await run();
  const wall = performance.now() - t0;
  const c1 = cpuMs(pid);
  const other = Math.max(0, (100 * (machineBusyMs() - m0 - (c1.total - c0.total) - clientCpu(res))) / (wall * CORES));
  return { res, cpu_ms: c1.total - c0.total, main_ms: c1.main - c0.main, other_pct: other, wall_ms: wall };
}

async function main(): Promise<void> {
  const { onnx, store } = prepare();
  const jpeg = readFileSync(IMAGE);
  log(`image ${IMAGE} (${jpeg.length} bytes); ${ROUNDS} rounds x ${DURATION_S} s per target, c=${CONCURRENCY}; logs in ${LOGS}`);

  const [pi, pm, px] = [await freePort(), await freePort(), await freePort()];
  const inference = `http://127.0.0.1:${pi}`;
  const server = startChild(process.execPath, [...NODE_FLAGS, CLI, 'start', '--model-store', store, '--models', 'resnet18.mar'], {
    logFile: join(LOGS, 'nnserve.log'),
    env: { NNSERVE_INFERENCE_ADDRESS: inference, NNSERVE_MANAGEMENT_ADDRESS: `http://127.0.0.1:${pm}`, NNSERVE_METRICS_ADDRESS: `http://127.0.0.1:${px}` },
  });
  const bare = startChild(process.execPath, [...NODE_FLAGS, join(ROOT, 'dist/bench/bare-ort.js'), onnx, '--batch', '8', '--threads', '2', '--warmup', '3', '--serve'],
    { logFile: join(LOGS, 'bare-ort.log') });
  const bareReady = bare.waitFor(/^READY$/); // registered now: it may print before the server is up
  const url = `${inference}/predictions/resnet18`;
  const wrk = (durationS: number) => runWrk({ url, connections: CONCURRENCY, durationS, bodyFile: IMAGE, contentType: 'image/jpeg', logFile: join(LOGS, 'wrk.log'), timeoutS: 30 });
  const bareRun = async (seconds: number) => {
    const line = bare.waitFor(/^RESULT (\{.*\})$/, (seconds + 120) * 1000);
    bare.proc.stdin!.write(`RUN ${seconds}\n`);
    return JSON.parse((await line)[1]!) as { images_per_s: number; engine: string; p50_ms: number; p99_ms: number };
  };
  try {
    await waitHttpOk(`${inference}/ping`);
    await bareReady;
    const probe = await fetch(url, { method: 'POST', body: jpeg, headers: { 'content-type': 'image/jpeg' } });
    const top5 = (await probe.json()) as Record<string, number>;
    if (!probe.ok || Object.keys(top5).length !== 5) throw new Error(`probe: HTTP ${probe.status} ${JSON.stringify(top5)}`);
    log(`probe answered top-5 ${JSON.stringify(top5)}`);
    await wrk(WARMUP_S);
    await bareRun(WARMUP_S);

    const served: Round<WrkResult>[] = [];
    const ref: Round<Awaited<ReturnType<typeof bareRun>>>[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      served.push(await measure(server.pid, () => wrk(DURATION_S), (w) => w.client_cpu_ms));
      ref.push(await measure(bare.pid, () => bareRun(DURATION_S)));
      const s = served[round]!;
      log(`round ${round + 1}: nnserve ${r(s.res.rps)} req/s (p50 ${r(s.res.p50_ms)} ms, p99 ${r(s.res.p99_ms)} ms, errors ${s.res.errors}); ORT ${r(ref[round]!.res.images_per_s)} img/s`);
    }
    const ratios = served.map((s, i) => s.res.rps / ref[i]!.res.images_per_s);
    const rps = median(served.map((s) => s.res.rps));
    const p50 = median(served.map((s) => s.res.p50_ms));
    const p99 = median(served.map((s) => s.res.p99_ms));
    const ort = median(ref.map((x) => x.res.images_per_s));
    const cpuPerReq = median(served.map((s) => s.cpu_ms / s.res.requests));
    const mainPerReq = median(served.map((s) => s.main_ms / s.res.requests));
    const ortCpuPerImg = median(ref.map((x) => x.cpu_ms / (x.res.images_per_s * (x.wall_ms / 1000))));
    const ratio = median(ratios);
    const errors = served.reduce((a, s) => a + s.res.errors, 0);
    console.log(`\n## JPEG (${IMAGE.split('/').pop()}) -> top-5, ResNet-18 (random weights), c=${CONCURRENCY}, ${ROUNDS} x ${DURATION_S} s, medians\n`);
    console.log(table(['target', 'req/s (img/s)', 'p50 ms', 'p99 ms', 'CPU ms/img', 'main-thread CPU ms/img', 'other load %', 'errors'], [
      ['nnserve HTTP, JPEG in', r(rps), r(p50), r(p99), r(cpuPerReq), r(mainPerReq), r(median(served.map((s) => s.other_pct)), 1), errors],
      ['ORT in-process, tensors in (batch 8)', r(ort), r(median(ref.map((x) => x.res.p50_ms))), r(median(ref.map((x) => x.res.p99_ms))), r(ortCpuPerImg), '', r(median(ref.map((x) => x.other_pct)), 1), ''],
      ['ratio nnserve / ORT', r(ratio), '', '', '', '', '', `per round ${ratios.map((x) => r(x)).join(' / ')}; target >= 0.85: ${ratio >= 0.85 ? 'PASS' : 'MISS'}`],
      ['vs seed Flask (45.7 req/s)', r(rps / SEED_FLASK_RPS), '', '', '', '', '', `target >= 1.7: ${rps / SEED_FLASK_RPS >= 1.7 ? 'PASS' : 'MISS'}`],
    ]));
    emit({ bench: 'image-classifier', target: 'nnserve', image: IMAGE.split('/').pop(), rps: r(rps), p50_ms: r(p50), p99_ms: r(p99), cpu_ms_per_img: r(cpuPerReq), main_thread_cpu_ms_per_img: r(mainPerReq), errors, rounds: ROUNDS, duration_s: DURATION_S, concurrency: CONCURRENCY });
    emit({ bench: 'image-classifier', target: 'ort-inprocess', img_s: r(ort), engine: ref[0]?.res.engine, batch: 8, intra_op_threads: 2 });
    emit({ bench: 'image-classifier', ratio_vs: 'ort-inprocess', ratio: r(ratio), per_round: ratios.map((x) => r(x)), target: 0.85, pass: ratio >= 0.85 });
    emit({ bench: 'image-classifier', ratio_vs: 'seed-flask', ratio: r(rps / SEED_FLASK_RPS), seed_rps: SEED_FLASK_RPS, target: 1.7, pass: rps / SEED_FLASK_RPS >= 1.7 });
  } finally {
    bare.proc.stdin!.end('EXIT\n');
    await Promise.all([server.stop(), bare.stop()]);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
