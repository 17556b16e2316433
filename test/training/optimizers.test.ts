/**
 * The optimizers against torch.optim (1.13): 20 steps over fixed gradients for each option
 * combination of tools/make_training_fixtures.py, parameter by parameter.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NnsError } from '../../src/errors.js';
import { Adam, createOptimizer, OPTIMIZER_NAMES, SGD } from '../../src/training/optimizers/index.js';
import { resolveParamGroups, type ParamGroupSpec } from '../../src/training/param-groups.js';
import { f32, readFixture, relError } from './fixtures.js';

interface OptimizerFixture {
  params: Record<string, string>;
  grads: Record<string, string>[];
  cases: { name: string; optimizer: string; options: Record<string, unknown>; param_groups: ParamGroupSpec[]; freeze: string[]; steps: Record<string, string>[] }[];
}

const fx = readFixture<OptimizerFixture>('optimizers.json');
const grads = fx.grads.map((g) => new Map(Object.entries(g).map(([k, v]) => [k, f32(v)])));
const fresh = () => new Map(Object.entries(fx.params).map(([k, v]) => [k, f32(v)]));

function rejects(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof NnsError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  });
}

for (const c of fx.cases) {
  test(`${c.name}: 20 steps track PyTorch`, (t) => {
    const parameters = fresh();
    const initial = fresh();
    const opt = createOptimizer(c.optimizer, { parameters, param_groups: c.param_groups, freeze: c.freeze }, c.options);
    let worst = 0;
    c.steps.forEach((expected, k) => {
      opt.step(grads[k]);
      for (const [name, want] of Object.entries(expected)) {
        const err = relError(parameters.get(name)!, f32(want));
        worst = Math.max(worst, err);
        // Measured: at most 2.3e-7. Dropping any one option moves the result by more than 1e-4.
        assert.ok(err < 1e-5, `${c.name} step ${k + 1} ${name}: relative error ${err}`);
      }
    });
    for (const name of opt.frozen) assert.deepEqual(parameters.get(name), initial.get(name), `frozen ${name} changed`);
    t.diagnostic(`max relative error ${worst.toExponential(2)}`);

    // Frozen parameters need no gradient: giving only the trainable ones changes nothing.
    const again = fresh();
    const opt2 = createOptimizer(c.optimizer, { parameters: again, param_groups: c.param_groups, freeze: c.freeze }, c.options);
    assert.deepEqual(opt2.trainable, opt.trainable);
    for (const g of grads) opt2.step(new Map(opt2.trainable.map((n) => [n, g.get(n)!])));
    for (const [name, v] of parameters) assert.deepEqual(again.get(name), v, name);
  });
}

test('parameters moved into the optimizer and gradients written into its buffers give the same result, bit for bit', () => {
  for (const c of fx.cases) {
    const spec = () => ({ param_groups: c.param_groups, freeze: c.freeze });
    const copied = fresh();
    const a = createOptimizer(c.optimizer, { parameters: copied, ...spec() }, c.options);
    const b = createOptimizer(c.optimizer, { parameters: fresh(), ...spec() }, c.options);
    const moved = b.adoptParameters();
    assert.deepEqual([...moved.keys()], b.trainable);
    const buffers = b.gradientBuffers();
    for (const g of grads) {
      a.step(g);
      for (const [name, buffer] of buffers) buffer.set(g.get(name)!);
      b.step(buffers);
    }
    for (const [name, v] of copied) assert.deepEqual(b.parameters.get(name), v, `${c.name}: ${name}`);
    for (const [name, v] of moved) assert.equal(b.parameters.get(name), v, 'step updates the moved arrays in place');
  }
});

test('a state_dict saved after 10 steps resumes to the same 20-step result', () => {
  for (const c of fx.cases) {
    const spec = () => ({ param_groups: c.param_groups, freeze: c.freeze });
    const a = fresh();
    const first = createOptimizer(c.optimizer, { parameters: a, ...spec() }, c.options);
    for (let k = 0; k < 10; k++) first.step(grads[k]);
    // Through JSON, as a checkpoint file would carry it.
    const saved = JSON.parse(JSON.stringify(first.stateDict(), (_k, v) => (v instanceof Float32Array ? Array.from(v) : v)));
    const b = new Map([...a].map(([k, v]) => [k, v.slice()]));
    const second = createOptimizer(c.optimizer, { parameters: b, ...spec() }, c.options);
    second.loadStateDict(saved);
    for (let k = 10; k < 20; k++) {
      first.step(grads[k]);
      second.step(grads[k]);
    }
    for (const [name, v] of a) assert.deepEqual(b.get(name), v, `${c.name}: ${name}`);
  }
});

test('a state_dict that does not fit is refused', () => {
  const opt = new Adam(fresh());
  opt.step(grads[0]);
  const sd = opt.stateDict();
  const other = new Adam({ parameters: fresh(), param_groups: [{ params: ['fc.*'] }] });
  rejects(() => other.loadStateDict(sd), 'NNS_ERR_TRAIN_STATE_INVALID', /1 param groups, this optimizer 2/);
  const short = { ...sd, state: { 'fc.bias': { ...sd.state['fc.bias'], exp_avg: [1, 2] } } };
  rejects(() => new Adam(fresh()).loadStateDict(short), 'NNS_ERR_TRAIN_STATE_INVALID', /fc\.bias.*exp_avg has 2 elements/);
  const sgd = new SGD(fresh(), { lr: 0.1, momentum: 0.9 });
  sgd.step(grads[0]);
  rejects(() => new Adam(fresh()).loadStateDict({ ...sd, state: sgd.stateDict().state }), 'NNS_ERR_TRAIN_STATE_INVALID', /momentum_buffer: Adam keeps no state named "momentum_buffer"/);
});

test('options are validated as torch does, naming the option', () => {
  const code = 'NNS_ERR_TRAIN_OPTIONS_INVALID';
  rejects(() => new SGD(fresh()), code, /SGD lr is required/);
  rejects(() => new SGD(fresh(), { lr: -0.1 }), code, /SGD lr: invalid value -0\.1, expected >= 0/);
  rejects(() => new SGD(fresh(), { lr: 0.1, nesterov: true }), code, /Nesterov momentum requires a momentum and zero dampening/);
  rejects(() => new Adam(fresh(), { betas: [0.9, 1] }), code, /Adam betas\[1\]: invalid beta parameter 1/);
  rejects(() => createOptimizer('adam', fresh(), { weight_decy: 0.1 }), code, /Adam has no option "weight_decy"; its options are lr, betas/);
  rejects(() => createOptimizer('rmsprop', { parameters: fresh(), param_groups: [{ params: ['fc.*'], alpha: -1 }] }), code, /RMSprop param_groups\[0\]\.alpha: invalid value -1/);
  rejects(() => createOptimizer('adagrad', fresh(), { eps: Number.NaN }), code, /Adagrad eps: expected a finite number/);
  rejects(() => createOptimizer('lbfgs', fresh()), code, new RegExp(`unknown optimizer "lbfgs"; known optimizers are ${OPTIMIZER_NAMES.join(', ')}`));
});

test('param groups resolve names and globs, refuse overlaps and patterns that match nothing', () => {
  const names = ['layer1.weight', 'layer1.bias', 'fc.weight', 'fc.bias'];
  const r = resolveParamGroups(names, [{ params: ['fc.*'], lr: 0.1 }, { params: ['layer1.bias'], requires_grad: false }], ['layer1.w*']);
  // Parameters no group names form a last group with the defaults.
  assert.deepEqual(r.groups.map((g) => g.params), [['fc.weight', 'fc.bias'], ['layer1.bias'], ['layer1.weight']]);
  assert.deepEqual(r.groups[0].options, { lr: 0.1 });
  assert.deepEqual(r.frozen, ['layer1.weight', 'layer1.bias']);
  assert.deepEqual(r.trainable, ['fc.weight', 'fc.bias']);
  const code = 'NNS_ERR_TRAIN_OPTIONS_INVALID';
  rejects(() => resolveParamGroups(names, [{ params: ['*.bias'] }, { params: ['fc.*'] }]), code, /"fc\.bias" appears in param_groups\[0\] and param_groups\[1\]/);
  rejects(() => resolveParamGroups(names, [{ params: ['conv1.*'] }]), code, /param_groups\[0\]\.params: "conv1\.\*" matches no parameter/);
  rejects(() => resolveParamGroups(names, [], ['encoder.*']), code, /freeze: "encoder\.\*" matches no parameter/);
});

test('gradients that do not fit the parameters are refused; missing ones are skipped as torch does', () => {
  const parameters = fresh();
  const before = parameters.get('fc.bias')!.slice();
  const opt = new SGD(parameters, { lr: 0.1 });
  rejects(() => opt.step(new Map([['fc.gamma', new Float32Array(3)]])), 'NNS_ERR_TRAIN_GRADIENTS_INVALID', /"fc\.gamma", which is not a parameter/);
  rejects(() => opt.step(new Map([['fc.bias', new Float32Array(4)]])), 'NNS_ERR_TRAIN_GRADIENTS_INVALID', /"fc\.bias" has 4 elements, the parameter has 3/);
  opt.step(new Map([['fc.weight', new Float32Array(18).fill(1)]]));
  assert.deepEqual(parameters.get('fc.bias'), before);
});
