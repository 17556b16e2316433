/**
 * A bad architecture or state_dict is refused with the catalogue's error, naming the module
 * and the problem, before ONNX Runtime sees anything.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { compileArchitecture, compileFromFiles } from '../../src/compiler/index.js';
import { ERRORS, NnsError } from '../../src/errors.js';
import { readStateDict } from '../../src/weights/index.js';
import { FIXTURES, GOLDEN, readJson } from './helpers.js';

function fails(arch: unknown, code: string, pattern: RegExp, sd: Parameters<typeof compileArchitecture>[1] = null): void {
  assert.throws(() => compileArchitecture(arch, sd), (e: unknown) => {
    assert.ok(e instanceof NnsError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    assert.equal(e.status, 400);
    return true;
  });
}

const seq = (...modules: unknown[]) => ({ inputs: [{ name: 'x', shape: ['batch', 3] }], sequential: modules });
const linear = (i: number, o: number) => ({ type: 'Linear', in_features: i, out_features: o });

test('an unknown layer is named with its module', () => {
  fails(seq(linear(3, 4), { type: 'Conv4d', in_channels: 4 }), ERRORS.ARCH_UNKNOWN_LAYER.code, /module "1": unknown layer type "Conv4d"; supported torch\.nn layers are .*Conv2d/);
});

test('wrong, missing and ill-typed constructor arguments', () => {
  fails(seq({ type: 'Linear', in_featurs: 3, out_features: 4 }), ERRORS.ARCH_INVALID.code, /module "0" \(Linear\) got an unexpected argument "in_featurs"; its arguments are in_features, out_features, bias/);
  fails(seq({ type: 'Linear', in_features: 3 }), ERRORS.ARCH_INVALID.code, /module "0" \(Linear\) is missing the required argument "out_features"/);
  fails(seq({ type: 'Conv2d', args: [3, 4, 'x'] }), ERRORS.ARCH_INVALID.code, /module "0" \(Conv2d\): kernel_size must be an int or a list of 2 ints, got "x"/);
  fails(seq({ type: 'Conv2d', args: [3, 4, 3], groups: 2 }), ERRORS.ARCH_INVALID.code, /in_channels=3 must be divisible by groups=2/);
  fails(seq({ type: 'Conv2d', args: [3, 4, 3], stride: 2, padding: 'same' }), ERRORS.ARCH_INVALID.code, /padding='same' is not supported for strided convolutions/);
  fails(seq({ type: 'Linear', args: [3, 4, true, 5] }), ERRORS.ARCH_INVALID.code, /takes 3 positional arguments/);
  fails(seq({ type: 'GELU', approximate: 'fast' }), ERRORS.ARCH_INVALID.code, /approximate must be one of "none", "tanh", got "fast"/);
});

test("shapes that don't chain name the module and both sizes", () => {
  fails(seq(linear(3, 4), { type: 'ReLU' }, linear(5, 2)), ERRORS.ARCH_SHAPE_MISMATCH.code, /module "2" \(Linear\): in_features=5 but its input has 4 features/);
  const cnn = { inputs: [{ name: 'x', shape: ['batch', 3, 8, 8] }], sequential: [{ type: 'Conv2d', args: [3, 8, 3] }, { type: 'BatchNorm2d', num_features: 16 }] };
  fails(cnn, ERRORS.ARCH_SHAPE_MISMATCH.code, /module "1" \(BatchNorm2d\): num_features=16 but its input has 8 channels/);
  const small = { inputs: [{ name: 'x', shape: ['batch', 3, 2, 2] }], sequential: [{ type: 'Conv2d', args: [3, 8, 5] }] };
  fails(small, ERRORS.ARCH_SHAPE_MISMATCH.code, /module "0" \(Conv2d\): its input is too small/);
  const rank = { inputs: [{ name: 'x', shape: ['batch', 3] }], sequential: [{ type: 'Conv2d', args: [3, 8, 1] }] };
  fails(rank, ERRORS.ARCH_SHAPE_MISMATCH.code, /module "0" \(Conv2d\): expects a 4-D input, got shape \[batch, 3\]/);
});

test('a resnet18 block with the wrong in_channels is named by its state_dict prefix', () => {
  const arch = readJson(join(FIXTURES, 'resnet18', 'architecture.json')) as { modules: Record<string, Record<string, unknown>> };
  arch.modules['layer1.0.conv1']!.in_channels = 32;
  fails(arch, ERRORS.ARCH_SHAPE_MISMATCH.code, /module "layer1\.0\.conv1" \(Conv2d\): in_channels=32 but its input has 64 channels/);
});

test('graph mistakes: unknown function, unknown node, undeclared module, bad view', () => {
  const base = (graph: unknown[], modules: Record<string, unknown> = {}) => ({ inputs: [{ name: 'x', shape: ['batch', 4] }], modules, graph });
  fails(base([{ op: 'placeholder', name: 'x' }, { op: 'call_function', name: 'f', target: 'torch.fft.fft', args: ['x'] }, { op: 'output', args: ['f'] }]),
    ERRORS.ARCH_UNKNOWN_LAYER.code, /node "f" .*unsupported function "torch\.fft\.fft"/);
  fails(base([{ op: 'placeholder', name: 'x' }, { op: 'call_function', name: 'r', target: 'torch.relu', args: ['y'] }, { op: 'output', args: ['r'] }]),
    ERRORS.ARCH_INVALID.code, /argument "y" is not the name of an earlier node/);
  fails(base([{ op: 'placeholder', name: 'x' }, { op: 'call_module', name: 'fc', target: 'fc', args: ['x'] }, { op: 'output', args: ['fc'] }]),
    ERRORS.ARCH_INVALID.code, /module "fc" is not declared in "modules"/);
  fails({ ...base([{ op: 'placeholder', name: 'x' }, { op: 'call_method', name: 'v', target: 'view', args: ['x', -1, 3] }, { op: 'output', args: ['v'] }]), inputs: [{ name: 'x', shape: [2, 4] }] },
    ERRORS.ARCH_SHAPE_MISMATCH.code, /node "v" \(view\): shape '\[-1, 3\]' is invalid for input of shape \[2, 4\]/);
  fails(base([{ op: 'placeholder', name: 'y' }, { op: 'output', args: ['y'] }]), ERRORS.ARCH_INVALID.code, /no entry in "inputs" declares "y"/);
});

test('a Sequential cannot hand an RNN\'s (output, h_n) tuple to the next layer, as in PyTorch', () => {
  const arch = { inputs: [{ name: 'x', dtype: 'int64', shape: ['batch', 4] }], sequential: [
    { type: 'Embedding', args: [5, 8] }, { type: 'RNN', args: [8, 16], batch_first: true }, linear(16, 5)] };
  fails(arch, ERRORS.ARCH_SHAPE_MISMATCH.code, /module "2" \(Linear\): input must be a tensor, got a tuple of 2/);
});

test('malformed JSON structure', () => {
  fails([], ERRORS.ARCH_INVALID.code, /must be a JSON object/);
  fails({ sequential: [] }, ERRORS.ARCH_INVALID.code, /"inputs": must be a non-empty list/);
  fails({ inputs: [{ name: 'x', shape: ['batch', 0] }], sequential: [] }, ERRORS.ARCH_INVALID.code, /dims must be positive ints or names/);
  fails({ inputs: [{ name: 'x', shape: [1] }] }, ERRORS.ARCH_INVALID.code, /needs "sequential"/);
  fails({ inputs: [{ name: 'x', shape: [1] }], sequential: [], extra: 1 }, ERRORS.ARCH_INVALID.code, /"extra": unknown key/);
});

test('strict state_dict loading lists missing, unexpected and mis-shaped keys in one error', async () => {
  const arch = readJson(join(GOLDEN, 'seed_my_model', 'architecture.json'));
  const sd = await readStateDict(join(GOLDEN, 'seed_my_model', 'weights.safetensors'));
  sd.delete('linear1.bias');
  sd.set('linear3.weight', { dtype: 'float32', shape: [1], data: new Float32Array(1) });
  sd.set('linear2.weight', { dtype: 'float32', shape: [4, 1], data: new Float32Array(4) });
  fails(arch, ERRORS.STATE_DICT_MISMATCH.code,
    /Error\(s\) in loading state_dict for MyModel:\n\tMissing key\(s\) in state_dict: "linear1\.bias"\.\n\tUnexpected key\(s\) in state_dict: "linear3\.weight"\.\n\tsize mismatch for linear2\.weight: copying a param with shape \[4, 1\] from checkpoint, the shape in current model is \[1, 4\]/, sd);
});

test('integer weights where floats belong are a dtype mismatch', async () => {
  const arch = seq(linear(3, 2));
  (arch.sequential[0] as Record<string, unknown>).bias = false;
  const sd = await readStateDict(join(FIXTURES, 'bad-weights', 'int_weights.safetensors'));
  fails(arch, ERRORS.STATE_DICT_MISMATCH.code, /dtype mismatch for 0\.weight: the checkpoint holds int64, the model needs float32/, sd);
});

test('BatchNorm loads a state_dict without num_batches_tracked, as PyTorch does for old checkpoints', async () => {
  const arch = readJson(join(GOLDEN, 'batchnorm1d', 'architecture.json'));
  const sd = await readStateDict(join(GOLDEN, 'batchnorm1d', 'weights.safetensors'));
  sd.delete('1.num_batches_tracked');
  assert.ok(compileArchitecture(arch, sd).onnx.length > 0);
});

test('compileFromFiles picks the reader by extension and passes its errors on', async () => {
  const archPath = join(GOLDEN, 'seed_my_model', 'architecture.json');
  const model = await compileFromFiles(archPath, join(GOLDEN, 'seed_my_model', 'weights.pth'));
  assert.deepEqual(model.outputs, [{ name: 'output', dtype: 'float32', shape: ['batch', 1] }]);
  await assert.rejects(compileFromFiles(archPath, join(FIXTURES, 'bad-weights', 'os_system.pth')), (e: unknown) => e instanceof NnsError && e.code === ERRORS.WEIGHTS_UNSAFE.code);
  await assert.rejects(compileFromFiles(join(FIXTURES, 'bad-weights', 'ok.pth'), null), (e: unknown) => e instanceof NnsError && e.code === ERRORS.ARCH_INVALID.code && /not valid JSON/.test(e.message));
});
