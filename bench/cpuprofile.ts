/**
 * Summarise V8 .cpuprofile files (node --cpu-prof): self time per function, top N.
 *
 *   node dist/bench/cpuprofile.js FILE.cpuprofile [...] [--top 25]
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; hitCount?: number; children?: number[] }
interface Profile { nodes: ProfileNode[]; startTime: number; endTime: number; samples?: number[]; timeDeltas?: number[] }

export interface SelfTime { fn: string; where: string; ms: number; pct: number }

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function where(cf: CallFrame): string {
  if (!cf.url) return '';
  let u = cf.url.startsWith('file://') ? fileURLToPath(cf.url) : cf.url;
  if (u.startsWith('/')) u = relative(ROOT, u);
  return `${u}:${cf.lineNumber + 1}`;
}

/** Self time by function (name + location), biggest first; `(idle)` is kept so busy share is visible. */
export function selfTimes(file: string): { total_ms: number; busy_ms: number; rows: SelfTime[]; groups: SelfTime[] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const ms = new Map<number, number>();
  if (p.samples && p.timeDeltas) {
    // Each delta is the time before the sample; attribute it to the sampled node.
    for (let i = 0; i < p.samples.length; i++) {
      const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
      ms.set(p.samples[i]!, (ms.get(p.samples[i]!) ?? 0) + dt);
    }
  } else {
    const n = p.nodes.reduce((a, x) => a + (x.hitCount ?? 0), 0) || 1;
    const per = (p.endTime - p.startTime) / 1000 / n;
    for (const x of p.nodes) ms.set(x.id, (x.hitCount ?? 0) * per);
  }
  const agg = new Map<string, SelfTime>();
  let total = 0;
  let idle = 0;
  for (const [id, t] of ms) {
    const cf = byId.get(id)!.callFrame;
    const fn = cf.functionName || '(anonymous)';
    const w = where(cf);
    total += t;
    if (fn === '(idle)') idle += t;
    const key = `${fn}@${w}`;
    const row = agg.get(key) ?? { fn, where: w, ms: 0, pct: 0 };
    row.ms += t;
    agg.set(key, row);
  }
  const busy = total - idle;
  const rows = [...agg.values()].filter((x) => x.fn !== '(idle)').sort((a, b) => b.ms - a.ms);
  for (const x of rows) x.pct = busy > 0 ? (100 * x.ms) / busy : 0;
  // The same time grouped by where the code lives: a package, one of our files, Node, or native.
  const g = new Map<string, SelfTime>();
  for (const x of rows) {
    const key = group(x);
    const row = g.get(key) ?? { fn: key, where: '', ms: 0, pct: 0 };
    row.ms += x.ms;
    row.pct += x.pct;
    g.set(key, row);
  }
  return { total_ms: total, busy_ms: busy, rows, groups: [...g.values()].sort((a, b) => b.ms - a.ms) };
}

function group(x: SelfTime): string {
  if (x.where === '') return x.fn.startsWith('(') ? x.fn : `native: ${x.fn}`;
  const nm = x.where.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (nm) return `pkg ${nm[1]}`;
  if (x.where.startsWith('node:')) return 'node internals (JS)';
  return x.where.replace(/:\d+$/, '');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const ti = args.indexOf('--top');
  const top = ti >= 0 ? Number(args.splice(ti, 2)[1]) : 25;
  for (const f of args) {
    const s = selfTimes(f);
    console.log(`\n${f}: ${s.total_ms.toFixed(0)} ms sampled, ${s.busy_ms.toFixed(0)} ms not idle`);
    for (const x of s.rows.slice(0, top)) console.log(`${x.ms.toFixed(1).padStart(9)} ms ${x.pct.toFixed(1).padStart(5)}%  ${x.fn}  ${x.where}`);
    console.log('  by place:');
    for (const x of s.groups.slice(0, top)) console.log(`${x.ms.toFixed(1).padStart(9)} ms ${x.pct.toFixed(1).padStart(5)}%  ${x.fn}`);
  }
}
