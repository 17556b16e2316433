/**
 * The server's V8 flags (README, "V8 heap flags") are written in four places that nothing else
 * ties together: the `nnserve` bin's shebang, `npm start`, the Dockerfile's CMD, and the flags
 * the benches start servers with. A change to one must reach all four, or the figures in the
 * README stop describing the server people run.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { NODE_FLAGS } from '../../bench/lib.js';
import { ROOT } from '../helpers.js';

const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');
const flagsIn = (words: string[]) => words.filter((w) => w.startsWith('--'));

test('the bin, npm start, the Dockerfile and the benches run the server with the same V8 flags', () => {
  const shebang = read('src/cli.ts').split('\n')[0]!;
  assert.match(shebang, /^#!\/usr\/bin\/env -S node /);
  const start = (JSON.parse(read('package.json')) as { scripts: { start: string } }).scripts.start;
  const node = start.slice(start.indexOf('node '));
  const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(read('Dockerfile'))![1]!) as string[];
  const expected = [...NODE_FLAGS];
  assert.ok(expected.includes('--initial-old-space-size=64') && expected.some((f) => f.startsWith('--max-semi-space-size=')));
  assert.deepEqual(flagsIn(shebang.split(/\s+/).slice(3)), expected, 'src/cli.ts shebang');
  assert.deepEqual(flagsIn(node.split(/\s+/)).filter((f) => f !== '--model-store'), expected, 'npm start');
  assert.deepEqual(flagsIn(cmd).filter((f) => f !== '--model-store'), expected, 'Dockerfile CMD');
});
