/**
 * The Dockerfile, checked without Docker (which cannot run on the development machines): the
 * syntax by dockerfile-utils (VS Code's Dockerfile linter), and hadolint's rules that apply here,
 * written out below with hadolint's rule ids (hadolint itself is in no registry we reach).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { validate } from 'dockerfile-utils';
import { CONFIG_KEYS } from '../../src/config.js';
import { ROOT } from '../helpers.js';

interface Instruction { keyword: string; args: string; line: number }

/** Instructions with line continuations joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current: Instruction | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!current && (line === '' || line.startsWith('#'))) return;
    if (current && line.startsWith('#')) return;
    const continued = line.endsWith('\\');
    const body = continued ? line.slice(0, -1) : line;
    if (current) current.args += ' ' + body.trim();
    else {
      const [keyword, ...rest] = body.split(/\s+/);
      current = { keyword: keyword!.toUpperCase(), args: rest.join(' '), line: i + 1 };
    }
    if (!continued) {
      out.push(current);
      current = undefined;
    }
  });
  return out;
}

/** hadolint's rules that can apply to this image; each finding names its rule. */
function lint(text: string): string[] {
  const all = instructions(text);
  const found: string[] = [];
  const args = new Map(all.filter((x) => x.keyword === 'ARG').map((x) => x.args.split('=') as [string, string]));
  const stages = all.filter((x) => x.keyword === 'FROM');
  const finalStage = all.slice(all.indexOf(stages.at(-1)!));
  for (const from of stages) {
    const image = from.args.split(/\s+/)[0]!.replace(/^\$\{?(\w+)\}?$/, (_, a: string) => args.get(a) ?? '');
    if (!/^[^:@\s]+[:@][^\s]+$/.test(image)) found.push(`DL3006 line ${from.line}: tag the image explicitly (${image})`);
    if (/:latest$/.test(image)) found.push(`DL3007 line ${from.line}: do not use :latest`);
  }
  if (stages.length < 2) found.push('multi-stage: build with dev dependencies in one stage, run in another');
  if (!finalStage.some((x) => x.keyword === 'COPY' && x.args.includes('--from='))) found.push('multi-stage: the final stage takes the build from an earlier one');
  const user = finalStage.filter((x) => x.keyword === 'USER').at(-1);
  if (!user || /^(root|0)(:|$)/.test(user.args)) found.push('DL3002: the last USER must not be root');
  if (!finalStage.some((x) => x.keyword === 'HEALTHCHECK')) found.push('HEALTHCHECK: the final stage needs one');
  for (const x of all) {
    const where = `line ${x.line}`;
    if (x.keyword === 'ADD') found.push(`DL3020 ${where}: use COPY, not ADD (ADD fetches URLs and unpacks archives)`);
    if (x.keyword === 'MAINTAINER') found.push(`DL4000 ${where}: MAINTAINER is deprecated`);
    if (x.keyword === 'WORKDIR' && !x.args.startsWith('/')) found.push(`DL3000 ${where}: WORKDIR must be absolute`);
    if ((x.keyword === 'CMD' || x.keyword === 'ENTRYPOINT') && !x.args.startsWith('[')) found.push(`DL3025 ${where}: ${x.keyword} in JSON form`);
    if (x.keyword !== 'RUN') continue;
    const run = x.args;
    if (/(^|[;&|]\s*)cd\s/.test(run)) found.push(`DL3003 ${where}: use WORKDIR, not cd`);
    if (/\bsudo\b/.test(run)) found.push(`DL3004 ${where}: no sudo`);
    if (/\b(curl|wget)\b/.test(run)) found.push(`${where}: no downloads besides the package registries`);
    if (/\|/.test(run.replace(/\|\|/g, '')) && !/set -o pipefail/.test(run)) found.push(`DL4006 ${where}: set -o pipefail before a pipe`);
    if (/\bnpm (i|install)\b/.test(run)) found.push(`DL3016 ${where}: npm ci installs the lockfile's versions`);
    if (/\bapt-get install\b/.test(run)) {
      if (!/\s-y\b|--yes/.test(run)) found.push(`DL3014 ${where}: apt-get install -y`);
      if (!/--no-install-recommends/.test(run)) found.push(`DL3015 ${where}: --no-install-recommends`);
      if (!/rm -rf \/var\/lib\/apt\/lists/.test(run)) found.push(`DL3009 ${where}: delete the apt lists`);
    }
    if (/\bapt-get (upgrade|dist-upgrade)\b/.test(run)) found.push(`DL3005 ${where}: no apt-get upgrade`);
  }
  const runs = finalStage.map((x) => x.keyword);
  for (let i = 1; i < runs.length; i++) if (runs[i] === 'RUN' && runs[i - 1] === 'RUN') found.push(`DL3059: consecutive RUNs in the final stage (line ${finalStage[i]!.line})`);
  return found;
}

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

test('the Dockerfile parses without errors or warnings (dockerfile-utils)', () => {
  assert.deepEqual(validate(dockerfile).map((d) => `line ${d.range.start.line + 1}: ${d.message}`), []);
  assert.ok(validate('FROM node:20\nEXPOSE eighty\n').length > 0, 'the validator reports problems');
});

test("the Dockerfile passes hadolint's rules: pinned base, multi-stage, non-root, HEALTHCHECK, no ADD or downloads", () => {
  assert.deepEqual(lint(dockerfile), []);
  const bad = 'FROM node\nADD https://example.com/x.tgz /x\nWORKDIR app\nRUN cd /x && curl -s y | sh && sudo apt-get install z\nRUN npm install\nCMD node x.js\n';
  const rules = lint(bad).map((f) => f.split(/[\s:]/)[0]);
  for (const rule of ['DL3006', 'DL3020', 'DL3000', 'DL3003', 'DL3004', 'DL4006', 'DL3015', 'DL3009', 'DL3016', 'DL3025', 'DL3002', 'HEALTHCHECK', 'multi-stage']) {
    assert.ok(rules.includes(rule), `the lint catches ${rule}: ${lint(bad).join('; ')}`);
  }
});

test('the image runs nnserve from the model-store volume, as a user, with real settings and copied files that exist', () => {
  const all = instructions(dockerfile);
  const final = all.slice(all.indexOf(all.filter((x) => x.keyword === 'FROM').at(-1)!));
  assert.ok(final.some((x) => x.keyword === 'VOLUME' && x.args.includes('/models')));
  assert.deepEqual(JSON.parse(final.find((x) => x.keyword === 'CMD')!.args), ['node', '--max-semi-space-size=4', '--initial-old-space-size=64', 'dist/src/cli.js', 'start', '--model-store', '/models']);
  assert.equal(final.find((x) => x.keyword === 'USER')!.args, '1000:1000', 'numeric, so Kubernetes can check runAsNonRoot');
  assert.deepEqual(final.find((x) => x.keyword === 'EXPOSE')!.args.split(/\s+/), ['8080', '8081', '8082']);
  for (const env of all.filter((x) => x.keyword === 'ENV')) {
    for (const [, key] of env.args.matchAll(/(NNSERVE_\w+)=/g)) {
      assert.ok(CONFIG_KEYS.some((k) => `NNSERVE_${k.toUpperCase()}` === key), `${key} is an nnserve setting`);
    }
  }
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.ok(all.some((x) => x.keyword === 'RUN' && x.args.includes('npm run build')) && pkg.scripts.build, 'the build stage runs the build script');
  // COPY sources are in the repository and in the build context .dockerignore leaves.
  const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
  assert.equal(ignore[0], '*', '.dockerignore starts from nothing (no node_modules, dist, .git or key_file.json)');
  const allowed = ignore.slice(1).map((p) => p.replace(/^!/, ''));
  for (const copy of all.filter((x) => x.keyword === 'COPY' && !x.args.includes('--from='))) {
    const sources = copy.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1);
    for (const s of sources) {
      assert.ok(allowed.includes(s), `.dockerignore lets ${s} into the build context`);
      if (!s.includes('*')) assert.ok(existsSync(join(ROOT, s)), `${s} exists`);
    }
  }
});
