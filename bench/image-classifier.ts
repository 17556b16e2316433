/**
 * JPEG -> top-5 through HTTP for a ResNet-18-sized model, against in-process ONNX Runtime on
 * already-preprocessed tensors and against the seed tutorial's Flask + TorchScript server, all in
 * the same run (rounds alternate the three targets, rotating the order, so all see the same machine).
 *
 *   npm run build && node dist/bench/image-classifier.js [--rounds 3] [--duration 15] [--image FILE] [--quick]
 *                                                        [--workers 1] [--batch 8] [--max-batch-delay 10]
 *
 * nnserve: `nnserve start` in its own process serving bench/.cache/resnet18.onnx (random weights,
 * bench/make_resnet18.py) with the image_classifier handler and its default transform (Resize
 * 256, CenterCrop 224, Normalize ImageNet; Pillow-exact resampling), minWorkers --workers (1),
 * batchSize --batch (8), maxBatchDelay --max-batch-delay (10), 2 intra-op threads; wrk (one thread, c=8) POSTs the JPEG as the raw body.
 * Reference: bench/bare-ort.ts (the same createSession, batch 8, 2 threads, no HTTP, no decoding).
 * Seed baseline: bench/seed_flask.py (the seed's Flask API, TorchScript trace of the same
 * random-weight network, bench/.cache/resnet18_traced.pt) under gunicorn -w 2 (sync workers,
 * PyTorch's default threads), Debian's /usr/bin/python3; wrk (one thread, c=8) POSTs the same JPEG
 * as multipart/form-data (field `file`, the body prebuilt in bench/.cache). Its CPU column is
 * the gunicorn master plus its workers. Issue #4 quotes 45.7 req/s for that server on "this
 * machine shape" (another machine); the ratio reported here is against the same-run measurement.
 * Prints a table, then one JSON line per figure (`BENCH {...}`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  acquireBenchLock, argValue, cpuMs, freePort, NODE_FLAGS, log, machineBusyMs, median, r, ROOT, runWrk, sleep, startChild, stopAllChildren, table, waitHttpOk,
  waitQuiet, CORES, type WrkResult,
} from './lib.js';

const flag = (name: string, def: string): string => argValue(name) ?? def;
const QUICK = process.argv.includes('--quick');
const ROUNDS = Number(flag('--rounds', QUICK ? '1' : '3'));
const DURATION_S = Number(flag('--duration', QUICK ? '5' : '15'));
const WARMUP_S = QUICK ? 3 : 5;
const IMAGE = flag('--image', join(ROOT, 'test/fixtures/images/chelsea.jpg'));
const CONCURRENCY = 8;
const WORKERS = Number(flag('--workers', '1'));
const BATCH = Number(flag('--batch', '8'));
const DELAY_MS = Number(flag('--max-batch-delay', '10'));
/** The seed's deployment: gunicorn's default sync workers, 2 of them. */
const SEED_WORKERS = 2;
const PYTHON = '/usr/bin/python3';
const CACHE = join(ROOT, 'bench/.cache');
const LOGS = join(CACHE, 'logs', `image-${new Date().toISOString().replace(/[:.]/g, '-')}`);
const CLI = join(ROOT, 'dist/src/cli.js');
const BOUNDARY = '----nnserve-bench-5f0c7a1e93d2b846';

const emit = (o: Record<string, unknown>) => console.log(`BENCH ${JSON.stringify(o)}`);
/** A table cell: blank where a figure could not be measured. */
const cell = (x: number, digits?: number): number | string => (Number.isFinite(x) ? r(x, digits) : '');

function prepare(): { onnx: string; traced: string; store: string } {
  mkdirSync(LOGS, { recursive: true });
  const onnx = join(CACHE, 'resnet18.onnx');
  const traced = join(CACHE, 'resnet18_traced.pt');
  if (!existsSync(onnx) || !existsSync(traced)) {
    log('making bench/.cache/resnet18{.onnx,_fixed1.onnx,_traced.pt} (bench/make_resnet18.py)');
    const p = spawnSync(PYTHON, [join(ROOT, 'bench/make_resnet18.py'), CACHE], { stdio: 'inherit', cwd: ROOT });
    if (p.status !== 0 || !existsSync(onnx) || !existsSync(traced)) throw new Error('bench/make_resnet18.py failed');
  }
  const cfgDir = join(CACHE, 'resnet18-image-config');
  const store = join(CACHE, 'store-resnet18-image');
  mkdirSync(cfgDir, { recursive: true });
  const cfg = join(cfgDir, 'model-config.yaml');
  writeFileSync(cfg, `minWorkers: ${WORKERS}\nmaxWorkers: ${WORKERS}\nbatchSize: ${BATCH}\nmaxBatchDelay: ${DELAY_MS}\nresponseTimeout: 120\n`);
  const p = spawnSync(process.execPath, [CLI, 'archive', '--model-name', 'resnet18', '--version', '1.0', '--serialized-file', onnx,
    '--handler', 'image_classifier', '--config-file', cfg, '--export-path', store, '-f'], { stdio: 'inherit', cwd: ROOT });
  if (p.status !== 0) throw new Error('archiving resnet18 failed');
  return { onnx, traced, store };
}

/** The request body a browser or `curl -F file=@IMAGE` sends the seed's /predict: one multipart part named `file`. */
function multipartBody(jpeg: Buffer, filename: string): Buffer {
  if (jpeg.includes(BOUNDARY)) throw new Error(`the image contains the multipart boundary ${BOUNDARY}`);
  return Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: image/jpeg\r\n\r\n`),
    jpeg,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
}

// ---------------------------------------------------------------------------------------------
// The seed's server: gunicorn in a process group of its own

/** Live (not zombie) processes of a process group, from /proc. */
function groupPids(pgid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = readFileSync(`/proc/${name}/stat`, 'utf8');
      const rest = s.slice(s.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
      if (Number(rest[2]) === pgid && rest[0] !== 'Z') pids.push(Number(name));
    } catch { /* exited meanwhile */ }
  }
  return pids.sort((a, b) => a - b);
}

/**
 * CPU ms of a whole process group (gunicorn's master and workers). NaN when the set of processes
 * changed since `pidsAt0` (a worker restarted: its CPU time would be lost), so the column is blank.
 */
function groupCpu(pgid: number, pidsAt0?: number[]): { total: number; main: number } {
  const pids = groupPids(pgid);
  const same = !pidsAt0 || (pidsAt0.length === pids.length && pidsAt0.every((p, i) => p === pids[i]));
  const total = pids.reduce((a, p) => a + cpuMs(p).total, 0);
  return { total: same ? total : NaN, main: NaN }; // no one main thread in a process group
}

/**
 * Started through a launcher that makes gunicorn the leader of a new session and process group
 * (so the whole group can be signalled) and asks the kernel to SIGKILL it should the bench die
 * without cleaning up (PR_SET_PDEATHSIG; its sync workers exit when they see their master gone).
 */
const GUNICORN_LAUNCHER = [
  'import ctypes, os, signal, sys',
  'ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG',
  'os.setsid()',
  'os.execv(sys.executable, [sys.executable, "-m", "gunicorn"] + sys.argv[1:])',
].join('\n');

/** SIGINT to the group (gunicorn's quick shutdown), SIGKILL after `graceMs`; waits until none is left. */
async function stopGroup(pgid: number, graceMs = 10_000): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pgid, sig);
    } catch { /* ESRCH: none left */ }
  };
  const waitGone = async (ms: number) => {
    const end = Date.now() + ms;
    while (groupPids(pgid).length > 0 && Date.now() < end) await sleep(100);
    return groupPids(pgid).length === 0;
  };
  if (groupPids(pgid).length === 0) return;
  signal('SIGINT');
  if (await waitGone(graceMs)) return;
  log(`gunicorn (process group ${pgid}) still running ${graceMs} ms after SIGINT: SIGKILL`);
  signal('SIGKILL');
  if (!(await waitGone(5000))) log(`WARNING: processes ${groupPids(pgid).join(' ')} of gunicorn's group ${pgid} survived SIGKILL`);
}

// ---------------------------------------------------------------------------------------------

interface Round<T> { res: T; cpu_ms: number; main_ms: number; other_pct: number; wall_ms: number }
type CpuProbe = () => { total: number; main: number };

/** Run once the machine is quiet; record the target's CPU and how busy the rest of the machine was. */
async function measure<T>(cpu: number | CpuProbe, run: () => Promise<T>, clientCpu: (t: T) => number = () => 0): Promise<Round<T>> {
  const probe: CpuProbe = typeof cpu === 'number' ? () => cpuMs(cpu) : cpu;
  await waitQuiet(15, QUICK ? 10 : 30);
  const m0 = machineBusyMs();
  const c0 = probe();
  const t0 = performance.now();
  const res = await run();
  const wall = performance.now() - t0;
  const c1 = probe();
  const busy = machineBusyMs() - m0;
  const targetMs = c1.total - c0.total; // NaN where the target's CPU could not be measured: so is `other`
  const other = Math.max(0, (100 * (busy - targetMs - clientCpu(res))) / (wall * CORES));
  return { res, cpu_ms: targetMs, main_ms: c1.main - c0.main, other_pct: other, wall_ms: wall };
}

async function main(): Promise<void> {
  await acquireBenchLock(`bench/image-classifier.js ${process.argv.slice(2).join(' ')}`);
  const { onnx, traced, store } = prepare();
  const jpeg = readFileSync(IMAGE);
  const multipartFile = join(CACHE, `seed-flask-body-${basename(IMAGE)}.multipart`);
  writeFileSync(multipartFile, multipartBody(jpeg, basename(IMAGE)));
  const multipartType = `multipart/form-data; boundary=${BOUNDARY}`;
  log(`image ${IMAGE} (${jpeg.length} bytes); ${ROUNDS} rounds x ${DURATION_S} s per target, c=${CONCURRENCY}; logs in ${LOGS}`);

  const [pi, pm, px, pf] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const inference = `http://127.0.0.1:${pi}`;
  const server = startChild(process.execPath, [...NODE_FLAGS, CLI, 'start', '--model-store', store, '--models', 'resnet18.mar'], {
    logFile: join(LOGS, 'nnserve.log'),
    env: { NNSERVE_INFERENCE_ADDRESS: inference, NNSERVE_MANAGEMENT_ADDRESS: `http://127.0.0.1:${pm}`, NNSERVE_METRICS_ADDRESS: `http://127.0.0.1:${px}` },
  });
  const bare = startChild(process.execPath, [...NODE_FLAGS, join(ROOT, 'dist/bench/bare-ort.js'), onnx, '--batch', '8', '--threads', '2', '--warmup', '3', '--serve'],
    { logFile: join(LOGS, 'bare-ort.log') });
  const bareReady = bare.waitFor(/^READY$/); // registered now: it may print before the server is up
  bareReady.catch(() => {}); // awaited below; an early failure elsewhere must not leave it unhandled

  // The seed's server. Its pid is gunicorn's master, the leader of its own process group.
  const seed = startChild(PYTHON, ['-c', GUNICORN_LAUNCHER, '-w', String(SEED_WORKERS), '-b', `127.0.0.1:${pf}`, '--chdir', join(ROOT, 'bench'), 'seed_flask:app'],
    { logFile: join(LOGS, 'seed-flask.log'), env: { SEED_MODEL: traced } });
  const seedPgid = seed.pid;
  let seedStopped = false;
  const killSeedNow = () => {
    if (seedStopped) return;
    try {
      process.kill(-seedPgid, 'SIGKILL');
    } catch { /* gone */ }
  };
  process.once('exit', killSeedNow);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping the processes this run started`);
      killSeedNow();
      void stopAllChildren(5000).finally(() => process.exit(130));
    });
  }
  // One line per worker once it has loaded the model (registered now, before any can print).
  const seedReady = Array.from({ length: SEED_WORKERS }, () => seed.waitFor(/^SEED_FLASK_READY pid=(\d+) torch_threads=(\d+)$/, 180_000));
  for (const p of seedReady) p.catch(() => {}); // awaited below, as bareReady

  const url = `${inference}/predictions/resnet18`;
  const seedUrl = `http://127.0.0.1:${pf}/predict`;
  const wrk = (durationS: number) => runWrk({ url, connections: CONCURRENCY, durationS, bodyFile: IMAGE, contentType: 'image/jpeg', logFile: join(LOGS, 'wrk.log'), timeoutS: 30 });
  const seedWrk = (durationS: number) => runWrk({ url: seedUrl, connections: CONCURRENCY, durationS, bodyFile: multipartFile, contentType: multipartType,
    logFile: join(LOGS, 'wrk-seed-flask.log'), timeoutS: 30 });
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

    const seedWorkers = (await Promise.all(seedReady)).map((m) => ({ pid: Number(m[1]), torch_threads: Number(m[2]) }));
    const seedProbe = await fetch(seedUrl, { method: 'POST', body: readFileSync(multipartFile), headers: { 'content-type': multipartType } });
    const seedText = await seedProbe.text();
    let seedClass: unknown;
    try {
      seedClass = (JSON.parse(seedText) as { class?: unknown }).class;
    } catch { /* not JSON */ }
    if (!seedProbe.ok || !Number.isInteger(seedClass)) throw new Error(`seed Flask probe: HTTP ${seedProbe.status} ${seedText.slice(0, 300)}`);
    log(`seed Flask (gunicorn -w ${SEED_WORKERS}, group ${seedPgid}: ${groupPids(seedPgid).join(' ')}) answered ${seedText.trim()}; ` +
      `workers ${seedWorkers.map((w) => `${w.pid}: torch.get_num_threads() ${w.torch_threads}`).join(', ')}`);

    await wrk(WARMUP_S);
    await bareRun(WARMUP_S);
    await seedWrk(WARMUP_S);
    const osThreads = seedWorkers.map((w) => {
      try {
        return readdirSync(`/proc/${w.pid}/task`).length;
      } catch {
        return NaN;
      }
    });
    log(`seed Flask workers after warm-up: ${osThreads.join(', ')} OS threads each`);

    const served: Round<WrkResult>[] = [];
    const ref: Round<Awaited<ReturnType<typeof bareRun>>>[] = [];
    const flask: Round<WrkResult>[] = [];
    const targets = ['nnserve', 'ort', 'flask'] as const;
    for (let round = 0; round < ROUNDS; round++) {
      const k = round % targets.length;
      const order = [...targets.slice(k), ...targets.slice(0, k)];
      for (const t of order) {
        if (t === 'nnserve') served.push(await measure(server.pid, () => wrk(DURATION_S), (w) => w.client_cpu_ms));
        else if (t === 'ort') ref.push(await measure(bare.pid, () => bareRun(DURATION_S)));
        else {
          const pids0 = groupPids(seedPgid);
          flask.push(await measure(() => groupCpu(seedPgid, pids0), () => seedWrk(DURATION_S), (w) => w.client_cpu_ms));
        }
      }
      const [s, b, f] = [served[round]!, ref[round]!, flask[round]!];
      log(`round ${round + 1} (${order.join(', ')}): nnserve ${r(s.res.rps)} req/s (p50 ${r(s.res.p50_ms)} ms, p99 ${r(s.res.p99_ms)} ms, errors ${s.res.errors}); ` +
        `ORT ${r(b.res.images_per_s)} img/s; seed Flask ${r(f.res.rps)} req/s (p50 ${r(f.res.p50_ms)} ms, p99 ${r(f.res.p99_ms)} ms, errors ${f.res.errors})`);
    }
    const ratios = served.map((s, i) => s.res.rps / ref[i]!.res.images_per_s);
    const flaskRatios = served.map((s, i) => s.res.rps / flask[i]!.res.rps);
    const rps = median(served.map((s) => s.res.rps));
    const p50 = median(served.map((s) => s.res.p50_ms));
    const p99 = median(served.map((s) => s.res.p99_ms));
    const ort = median(ref.map((x) => x.res.images_per_s));
    const cpuPerReq = median(served.map((s) => s.cpu_ms / s.res.requests));
    const mainPerReq = median(served.map((s) => s.main_ms / s.res.requests));
    const ortCpuPerImg = median(ref.map((x) => x.cpu_ms / (x.res.images_per_s * (x.wall_ms / 1000))));
    const ratio = median(ratios);
    const errors = served.reduce((a, s) => a + s.res.errors, 0);
    const fRps = median(flask.map((x) => x.res.rps));
    const fP50 = median(flask.map((x) => x.res.p50_ms));
    const fP99 = median(flask.map((x) => x.res.p99_ms));
    const fCpuValid = flask.filter((x) => Number.isFinite(x.cpu_ms));
    const fCpuPerReq = fCpuValid.length ? median(fCpuValid.map((x) => x.cpu_ms / x.res.requests)) : NaN;
    const fErrors = flask.reduce((a, x) => a + x.res.errors, 0);
    const flaskRatio = median(flaskRatios);
    console.log(`\n## JPEG (${basename(IMAGE)}) -> top-5, ResNet-18 (random weights), c=${CONCURRENCY}, ${ROUNDS} x ${DURATION_S} s, medians\n`);
    console.log(table(['target', 'req/s (img/s)', 'p50 ms', 'p99 ms', 'CPU ms/img', 'main-thread CPU ms/img', 'other load %', 'errors'], [
      ['nnserve HTTP, JPEG in', r(rps), r(p50), r(p99), r(cpuPerReq), r(mainPerReq), r(median(served.map((s) => s.other_pct)), 1), errors],
      ['ORT in-process, tensors in (batch 8)', r(ort), r(median(ref.map((x) => x.res.p50_ms))), r(median(ref.map((x) => x.res.p99_ms))), r(ortCpuPerImg), '', r(median(ref.map((x) => x.other_pct)), 1), ''],
      [`seed Flask + TorchScript (gunicorn -w ${SEED_WORKERS}), multipart JPEG in`, r(fRps), r(fP50), r(fP99), cell(fCpuPerReq), '', cell(median(flask.map((x) => x.other_pct).filter(Number.isFinite)), 1), fErrors],
      ['ratio nnserve / ORT', r(ratio), '', '', '', '', '', `per round ${ratios.map((x) => r(x)).join(' / ')}; target >= 0.85: ${ratio >= 0.85 ? 'PASS' : 'MISS'}`],
      ['ratio nnserve / seed Flask (same run)', r(flaskRatio), '', '', '', '', '', `per round ${flaskRatios.map((x) => r(x)).join(' / ')}; target >= 1.7: ${flaskRatio >= 1.7 ? 'PASS' : 'MISS'}`],
    ]));
    emit({ bench: 'image-classifier', target: 'nnserve', image: basename(IMAGE), rps: r(rps), p50_ms: r(p50), p99_ms: r(p99), cpu_ms_per_img: r(cpuPerReq), main_thread_cpu_ms_per_img: r(mainPerReq), errors, rounds: ROUNDS, duration_s: DURATION_S, concurrency: CONCURRENCY });
    emit({ bench: 'image-classifier', target: 'ort-inprocess', img_s: r(ort), engine: ref[0]?.res.engine, batch: 8, intra_op_threads: 2 });
    emit({ bench: 'image-classifier', target: 'seed-flask', rps: r(fRps), p50_ms: r(fP50), p99_ms: r(fP99), cpu_ms_per_img: Number.isFinite(fCpuPerReq) ? r(fCpuPerReq) : null, errors: fErrors,
      gunicorn_workers: SEED_WORKERS, torch_threads: seedWorkers.map((w) => w.torch_threads), os_threads: osThreads, rounds: ROUNDS, duration_s: DURATION_S, concurrency: CONCURRENCY });
    emit({ bench: 'image-classifier', ratio_vs: 'ort-inprocess', ratio: r(ratio), per_round: ratios.map((x) => r(x)), target: 0.85, pass: ratio >= 0.85 });
    emit({ bench: 'image-classifier', ratio_vs: 'seed-flask', ratio: r(flaskRatio), per_round: flaskRatios.map((x) => r(x)), seed_rps: r(fRps), target: 1.7, pass: flaskRatio >= 1.7 });
  } finally {
    bare.proc.stdin!.end('EXIT\n');
    await Promise.all([server.stop(), bare.stop(), stopGroup(seedPgid)]);
    seedStopped = groupPids(seedPgid).length === 0;
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
