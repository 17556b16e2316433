/** The safetensors reader and writer, and their errors on corrupt or lying files. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERRORS, NnsError } from '../../src/errors.js';
import { type StateDict, readStateDict, writeSafetensors } from '../../src/weights/index.js';
import { parseSafetensors } from '../../src/weights/safetensors.js';

const BAD = join(process.cwd(), 'test', 'fixtures', 'compiler', 'bad-weights');

async function rejects(file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(readStateDict(join(BAD, file)), (e: unknown) => {
    assert.ok(e instanceof NnsError, String(e));
    assert.equal(e.code, ERRORS.WEIGHTS_INVALID.code);
    assert.match(e.message, pattern);
    return true;
  });
}

test('reads what the Python exporter wrote', async () => {
  const sd = await readStateDict(join(BAD, 'ok.safetensors'));
  assert.deepEqual(sd.get('0.weight')!.shape, [2, 3]);
  assert.deepEqual([...sd.get('0.weight')!.data], [0, 1, 2, 3, 4, 5]);
});

test('write then read gives back the same tensors', () => {
  const sd: StateDict = new Map([
    ['a.weight', { dtype: 'float32', shape: [2, 2], data: new Float32Array([1, -2, 3.5, 1e-8]) }],
    ['b.num_batches_tracked', { dtype: 'int64', shape: [], data: new BigInt64Array([7n]) }],
  ]);
  const back = parseSafetensors(writeSafetensors(sd), 'mem');
  assert.deepEqual([...back.keys()], [...sd.keys()]);
  for (const [k, t] of sd) {
    assert.deepEqual(back.get(k)!.shape, t.shape);
    assert.deepEqual([...back.get(k)!.data], [...t.data]);
  }
});

test('corrupt, truncated and lying safetensors give clear errors', async () => {
  await rejects('truncated.safetensors', /outside the 19-byte data section \(truncated\?\)/);
  await rejects('short.safetensors', /only 5 bytes/);
  await rejects('huge_header.safetensors', /header length 1152921504606846976 is larger/);
  await rejects('bad_json.safetensors', /not valid JSON/);
  await rejects('wrong_dtype.safetensors', /dtype "C64"/);
  await rejects('huge_shape.safetensors', /more than 2147483647 elements/);
  await rejects('offsets_mismatch.safetensors', /needs 24 bytes, its data_offsets give 20/);
  await rejects('offsets_outside.safetensors', /outside the 24-byte data section/);
});

test('every prefix of a valid file is rejected cleanly', () => {
  const bytes = readFileSync(join(BAD, 'ok.safetensors'));
  for (let n = 0; n < bytes.length; n++) {
    assert.throws(() => parseSafetensors(bytes.subarray(0, n), 'cut'), (e: unknown) => e instanceof NnsError && e.code === ERRORS.WEIGHTS_INVALID.code);
  }
});

test('an unknown extension is refused', async () => {
  await assert.rejects(readStateDict('/tmp/weights.npz'), /must end in \.safetensors, \.pth/);
});
