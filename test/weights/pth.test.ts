/**
 * The .pth reader: real torch.save files, and malicious, corrupt or lying ones made by
 * tools/make_compiler_fixtures.py. A malicious pickle must be refused, not run.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERRORS, NnsError } from '../../src/errors.js';
import { readStateDict } from '../../src/weights/index.js';

const BAD = join(process.cwd(), 'test', 'fixtures', 'compiler', 'bad-weights');
const GOLDEN = join(process.cwd(), 'test', 'fixtures', 'compiler', 'golden');

async function rejects(file: string, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(readStateDict(join(BAD, file)), (e: unknown) => {
    assert.ok(e instanceof NnsError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

test('a torch.save state_dict reads with its keys, shapes and values', async () => {
  const sd = await readStateDict(join(BAD, 'ok.pth'));
  assert.deepEqual([...sd.keys()], ['0.weight']);
  assert.deepEqual(sd.get('0.weight')!.shape, [2, 3]);
  assert.deepEqual([...sd.get('0.weight')!.data], [0, 1, 2, 3, 4, 5]);
});

test('strided and storage-sharing tensors read as PyTorch holds them', async () => {
  const pth = await readStateDict(join(GOLDEN, 'linear', 'weights.pth'));
  const st = await readStateDict(join(GOLDEN, 'linear', 'weights.safetensors'));
  assert.deepEqual([...pth.keys()], [...st.keys()]);
  for (const [k, t] of st) {
    assert.deepEqual(pth.get(k)!.shape, t.shape);
    assert.deepEqual([...pth.get(k)!.data], [...t.data], k);
  }
});

test('float16 and bfloat16 checkpoints read as float32', async () => {
  for (const name of ['seed_simple_cnn', 'seed_lstm_model']) {
    const pth = await readStateDict(join(GOLDEN, name, 'weights.pth'));
    const st = await readStateDict(join(GOLDEN, name, 'weights.safetensors'));
    for (const [k, t] of st) {
      assert.equal(t.dtype, 'float32');
      assert.deepEqual([...pth.get(k)!.data], [...t.data], k);
    }
  }
});

test('a checkpoint dict with model_state_dict is unwrapped', async () => {
  const sd = await readStateDict(join(BAD, 'checkpoint_dict.pth'));
  assert.deepEqual([...sd.keys()], ['0.weight']);
});

test('malicious pickles are refused without running anything', async () => {
  const marker = '/tmp/nnserve-pwned';
  const before = existsSync(marker);
  await rejects('os_system.pth', ERRORS.WEIGHTS_UNSAFE.code, /imports posix\.system|imports os\.system/);
  await rejects('builtins_eval.pth', ERRORS.WEIGHTS_UNSAFE.code, /imports (__builtin__|builtins)\.eval/);
  await rejects('stack_global_protocol4.pth', ERRORS.WEIGHTS_UNSAFE.code, /system/);
  await rejects('reduce_storage_type.pth', ERRORS.WEIGHTS_UNSAFE.code, /calls torch\.FloatStorage/);
  await rejects('inst_opcode.pth', ERRORS.WEIGHTS_UNSAFE.code, /INST/);
  await rejects('whole_module.pth', ERRORS.WEIGHTS_UNSAFE.code, /imports __main__\.MyModel/);
  assert.equal(existsSync(marker), before);
});

test('corrupt, truncated and lying .pth files give clear errors', async () => {
  const invalid = ERRORS.WEIGHTS_INVALID.code;
  await rejects('truncated.pth', invalid, /truncated/);
  await rejects('storage_too_short.pth', invalid, /storage declares 6 elements but holds 8 bytes/);
  await rejects('huge_size.pth', invalid, /too large/);
  await rejects('out_of_bounds_stride.pth', invalid, /reads past its storage/);
  await rejects('not_a_tensor.pth', invalid, /"0\.weight" holds string, not a tensor/);
  await rejects('garbage_pickle.pth', invalid, /opcode|ends early/);
  await rejects('legacy.pth', invalid, /legacy torch\.save format/);
  await rejects('torchscript.pt', invalid, /TorchScript/);
  await rejects('not_a_zip.pth', invalid, /not a PyTorch checkpoint/);
});

test('every prefix of a valid .pth is rejected cleanly, never with a crash', async () => {
  const { parsePth } = await import('../../src/weights/pth.js');
  const bytes = readFileSync(join(BAD, 'ok.pth'));
  for (let n = 0; n < bytes.length; n += 7) {
    assert.throws(() => parsePth(bytes.subarray(0, n), 'cut.pth'), (e: unknown) => e instanceof NnsError && e.code === ERRORS.WEIGHTS_INVALID.code);
  }
});
