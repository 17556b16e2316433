/** Real processes for the deployment tests: `nnserve start` on free ports, and tools from Debian. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers.js';

/** The tool's path, or a failure that says which Debian package to install (never a skip). */
export function requireTool(command: string, debianPackage: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  if (found.status !== 0) {
    throw new Error(`${command} is not installed: apt-get install -y --no-install-recommends ${debianPackage} (.ci/run installs it)`);
  }
  return found.stdout.trim();
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface Running {
  child: ChildProcess;
  /** Everything the process printed so far. */
  log(): string;
  stop(): Promise<number | null>;
}

export function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Running {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    log: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export interface Nnserve extends Running {
  inference: string;
  management: string;
  metrics: string;
}

/**
 * `node dist/src/cli.js start` on free loopback ports, as the image runs it, returning as soon as
 * it is spawned (helpers.ts' startServerProcess waits until the models have loaded).
 */
export async function startNnserve(modelStore: string, env: NodeJS.ProcessEnv = {}): Promise<Nnserve> {
  const [i, m, x] = [await freePort(), await freePort(), await freePort()];
  const url = (p: number) => `http://127.0.0.1:${p}`;
  const proc = run(process.execPath, [join(ROOT, 'dist/src/cli.js'), 'start', '--model-store', modelStore], {
    NNSERVE_INFERENCE_ADDRESS: url(i),
    NNSERVE_MANAGEMENT_ADDRESS: url(m),
    NNSERVE_METRICS_ADDRESS: url(x),
    NNSERVE_KEY_FILE: join(mkdtempSync(join(tmpdir(), 'nnserve-keys-')), 'key_file.json'),
    NNSERVE_NUMBER_OF_CORES: '2',
    ...env,
  });
  return { ...proc, inference: url(i), management: url(m), metrics: url(x) };
}

/** Poll until `check` holds; fail with the process log after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean>, proc: { log(): string }, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms\n${proc.log()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
