/** Helpers for bench/run.ts: child processes, free ports, RSS sampling, wrk, statistics, tables. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The repository root (dist/bench/lib.js -> ../..). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/**
 * Node flags of every process a bench starts (servers and their references alike), the ones the
 * server runs with in package.json's start script, the Dockerfile and the `nnserve` bin; why:
 * README, "V8 heap flags".
 */
export const NODE_FLAGS = ['--max-semi-space-size=4', '--initial-old-space-size=64'];

/** The value after `--name` on the command line (undefined when absent or followed by another flag). */
export function argValue(name: string, argv: string[] = process.argv.slice(2)): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--') ? argv[i + 1] : undefined;
}
export const WRK_SCRIPT = fileURLToPath(new URL('../../bench/wrk-post.lua', import.meta.url));

export const log = (msg: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A TCP port nobody listens on right now (so the bench never collides with a running nnserve). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// One benchmark at a time on this machine

const LOCK_FILE = '/tmp/nnserve-bench.lock';

/**
 * Benchmarks that run at the same time measure each other. Every bench entry point should call
 * this first: it waits (up to `maxWaitS`) while another live bench process holds the lock, then
 * holds it until this process exits. A lock left by a dead process is taken over.
 */
export async function acquireBenchLock(what: string, maxWaitS = 1800): Promise<void> {
  const end = Date.now() + maxWaitS * 1000;
  let said = false;
  for (;;) {
    try {
      writeFileSync(LOCK_FILE, `${process.pid} ${what}\n`, { flag: 'wx' });
      const release = () => {
        try {
          if (readFileSync(LOCK_FILE, 'utf8').startsWith(`${process.pid} `)) unlinkSync(LOCK_FILE);
        } catch { /* already gone */ }
      };
      process.once('exit', release);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder = '';
    try {
      holder = readFileSync(LOCK_FILE, 'utf8').trim();
    } catch {
      continue; // released meanwhile
    }
    const pid = Number(holder.split(' ')[0]);
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch { /* no such process */ }
    if (!alive) {
      try {
        unlinkSync(LOCK_FILE);
      } catch { /* someone else took it over */ }
      continue;
    }
    if (Date.now() > end) {
      log(`another benchmark (${holder}) still holds ${LOCK_FILE} after ${maxWaitS} s; running anyway`);
      return;
    }
    if (!said) log(`waiting for another benchmark to finish (${holder}, ${LOCK_FILE})`);
    said = true;
    await sleep(2000);
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes

export interface Child {
  proc: ChildProcess;
  pid: number;
  /** Resolves with the first stdout line matching `re`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGINT, then SIGKILL after `graceMs`; resolves on exit. */
  stop(graceMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

/** Every process the bench started and that still runs, so an interrupted bench can stop them. */
const live = new Set<ChildProcess>();

function track(proc: ChildProcess): void {
  live.add(proc);
  proc.on('exit', () => live.delete(proc));
}

/** SIGINT to every process started through this module that still runs; SIGKILL after `graceMs`. */
export async function stopAllChildren(graceMs = 10_000): Promise<void> {
  await Promise.all([...live].map((p) => new Promise<void>((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGINT');
    setTimeout(() => p.kill('SIGKILL'), graceMs).unref();
  })));
}

/** Spawn a process; stdout lines can be awaited, everything is also copied to `logFile`. */
export function startChild(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; logFile: string; cwd?: string }): Child {
  const proc = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  track(proc);
  const out = createWriteStream(opts.logFile);
  proc.stderr!.pipe(out, { end: false });
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    out.write(line + '\n');
    for (let i = 0; i < waiters.length; i++) {
      const m = line.match(waiters[i]!.re);
      if (m) {
        waiters[i]!.resolve(m);
        waiters.splice(i, 1);
        break;
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  void exited.then(() => out.end());
  return {
    proc,
    pid: proc.pid!,
    exited,
    waitFor(re, timeoutMs = 300_000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${cmd} ${args.join(' ')}: no line matching ${re} within ${timeoutMs} ms (see ${opts.logFile})`)), timeoutMs);
        const w = { re, resolve: (m: RegExpMatchArray) => { clearTimeout(t); resolve(m); } };
        waiters.push(w);
        void exited.then((code) => {
          clearTimeout(t);
          reject(new Error(`${cmd} ${args.join(' ')} exited (${code}) before printing ${re} (see ${opts.logFile})`));
        });
      });
    },
    async stop(graceMs = 15_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGINT');
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Memory

/** VmRSS (or another /proc/PID/status field) in KiB; NaN when the process is gone. */
export function procStatusKb(pid: number, field = 'VmRSS'): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Sample a process's VmRSS every `everyMs` until stopped; returns the samples in KiB. */
export function sampleRss(pid: number, everyMs = 100): { stop(): number[] } {
  const samples: number[] = [];
  const take = () => {
    const kb = procStatusKb(pid);
    if (!Number.isNaN(kb)) samples.push(kb);
  };
  take();
  const t = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(t);
      take();
      return samples;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// CPU time (clock ticks of /proc/.../stat; USER_HZ is 100 on Linux)

const TICK_MS = 10;

function statTicks(path: string, fields: [number, number]): number {
  try {
    const s = readFileSync(path, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
    return Number(rest[fields[0] - 3]) + Number(rest[fields[1] - 3]);
  } catch {
    return NaN;
  }
}

/** CPU ms (user + system) used so far by a process (all threads) and by its main thread. */
export function cpuMs(pid: number): { total: number; main: number } {
  return { total: statTicks(`/proc/${pid}/stat`, [14, 15]) * TICK_MS, main: statTicks(`/proc/${pid}/task/${pid}/stat`, [14, 15]) * TICK_MS };
}

/** Machine-wide CPU ms not idle (all cores), from /proc/stat. */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line as [number, number, number, number, number, number, number, number];
  void idle;
  void iowait;
  return (user + nice + system + irq + softirq + steal) * TICK_MS;
}

export const CORES = availableParallelism();

/**
 * Wait until the machine is quiet: less than `maxBusyPct` % of all cores busy over a 1 s window
 * (other people's test runs share this machine). Gives up after `maxWaitS` and says so.
 */
export async function waitQuiet(maxBusyPct = 15, maxWaitS = 60): Promise<number> {
  const end = Date.now() + maxWaitS * 1000;
  let pct = 100;
  let said = false;
  for (;;) {
    const b0 = machineBusyMs();
    const t0 = Date.now();
    await sleep(1000);
    pct = (100 * (machineBusyMs() - b0)) / ((Date.now() - t0) * CORES);
    if (pct < maxBusyPct) return pct;
    if (Date.now() > end) {
      log(`  machine still ${pct.toFixed(0)}% busy after ${maxWaitS} s; measuring anyway`);
      return pct;
    }
    if (!said) log(`  waiting for the machine to go quiet (${pct.toFixed(0)}% busy)`);
    said = true;
  }
}

/** CPU ms used by this process's reaped children (cutime + cstime): how the bench measures wrk. */
export function childrenCpuMs(): number {
  return statTicks('/proc/self/stat', [16, 17]) * TICK_MS;
}

// ---------------------------------------------------------------------------------------------
// Load generation (wrk)

export interface WrkOptions {
  url: string;
  connections: number;
  /** wrk threads; 1 leaves the most CPU to the server on a small machine. */
  threads?: number;
  durationS: number;
  bodyFile: string;
  contentType?: string;
  headers?: Record<string, string>;
  timeoutS?: number;
  /** Call `onProgress(n)` every `progressEvery` responses (exact with threads = 1). */
  progressEvery?: number;
  onProgress?: (responses: number, wrk: ChildProcess) => void;
  logFile: string;
}

export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  mean_ms: number;
  /** connect + read + write + timeout errors, and non-2xx/3xx responses. */
  errors: number;
  non2xx: number;
  /** CPU ms wrk used (user + system), from this process's reaped-children times. */
  client_cpu_ms: number;
}

export function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = ['-t', String(o.threads ?? 1), '-c', String(o.connections), '-d', `${o.durationS}s`,
    '--timeout', `${o.timeoutS ?? 10}s`, '-s', WRK_SCRIPT, o.url];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    BENCH_BODY_FILE: o.bodyFile,
    BENCH_CONTENT_TYPE: o.contentType ?? 'application/json',
    BENCH_HEADERS: Object.entries(o.headers ?? {}).map(([k, v]) => `${k}: ${v}`).join('\n'),
    BENCH_PROGRESS_EVERY: String(o.progressEvery ?? 0),
  };
  const cpu0 = childrenCpuMs();
  return new Promise((resolve, reject) => {
    const proc = spawn('wrk', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    track(proc);
    const out = createWriteStream(o.logFile, { flags: 'a' });
    out.write(`$ wrk ${args.join(' ')}\n`);
    let stdout = '';
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      out.write(d);
    });
    createInterface({ input: proc.stderr }).on('line', (line) => {
      const m = line.match(/^PROGRESS (\d+)$/);
      if (m) o.onProgress?.(Number(m[1]), proc);
      else out.write(line + '\n');
    });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      out.end();
      const m = stdout.match(/^WRKJSON (\{.*\})$/m);
      if (!m) return reject(new Error(`wrk exited (${code ?? signal}) without a summary; see ${o.logFile}`));
      const j = JSON.parse(m[1]!) as Record<string, number>;
      const seconds = j.duration_us! / 1e6;
      const non2xx = Number(stdout.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
      resolve({
        requests: j.requests!, seconds, rps: j.requests! / seconds,
        p50_ms: j.p50_us! / 1000, p90_ms: j.p90_us! / 1000, p99_ms: j.p99_us! / 1000, max_ms: j.max_us! / 1000, mean_ms: j.mean_us! / 1000,
        errors: j.connect! + j.read! + j.write! + j.timeout! + non2xx, non2xx,
        client_cpu_ms: childrenCpuMs() - cpu0,
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers (Node 20's global fetch)

export async function waitHttpOk(url: string, timeoutMs = 180_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(200);
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (${last})`);
}

/**
 * A model's request counters from the metrics endpoint: rows (`sum`) and requests (`count`) of
 * nnserve_batch_size, so sum/count is the mean batch a request ran in; and the summed worker
 * compute time of those requests (each request counts its batch's run), so computeS/count is
 * the mean time of one batch run, weighted by request.
 */
export async function batchSizeCounters(metricsUrl: string, model: string): Promise<{ sum: number; count: number; computeS: number }> {
  const text = await (await fetch(metricsUrl)).text();
  const read = (metric: string) => {
    const re = new RegExp(`^${metric}\\{[^}]*model_name="${model}"[^}]*\\}\\s+(\\S+)$`, 'm');
    const m = text.match(re);
    return m ? Number(m[1]) : 0;
  };
  return { sum: read('nnserve_batch_size_sum'), count: read('nnserve_batch_size_count'), computeS: read('nnserve_inference_compute_seconds_sum') };
}

// ---------------------------------------------------------------------------------------------
// Statistics and output

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Least-squares slope of y over x. */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return num / den;
}

/** Round for display/JSON: 3 significant decimals for small numbers, fewer for big ones. */
export function r(x: number, digits?: number): number {
  if (!Number.isFinite(x)) return x;
  const d = digits ?? (Math.abs(x) >= 100 ? 1 : Math.abs(x) >= 10 ? 2 : 3);
  return Number(x.toFixed(d));
}

/** A Markdown table (readable on a terminal too). */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((row) => row.map((c) => (typeof c === 'number' ? String(r(c)) : c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => String(row[i] ?? '').length)));
  const line = (row: (string | number)[]) => `| ${row.map((c, i) => String(c).padEnd(widths[i]!)).join(' | ')} |`;
  return [line(cells[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}
