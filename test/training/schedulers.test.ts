/**
 * LR schedulers against torch.optim.lr_scheduler (1.13): every param group's learning rate
 * (and OneCycleLR's momentum / beta1) after construction and after each of 100+ steps.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NnsError } from '../../src/errors.js';
import { Adagrad, createOptimizer, SGD } from '../../src/training/optimizers/index.js';
import { CosineAnnealingLR, createScheduler, SCHEDULER_NAMES, StepLR, type SchedulerSpec } from '../../src/training/schedulers/index.js';
import { readFixture } from './fixtures.js';

interface SchedulerFixture {
  cases: { name: string; optimizer: string; group_lrs: number[]; spec: SchedulerSpec; lrs: number[][]; momentum: number[][] }[];
}

const fx = readFixture<SchedulerFixture>('schedulers.json');

function twoGroups(optimizer: string, lrs: number[]) {
  const parameters = new Map([['a', new Float32Array(3)], ['b', new Float32Array(2)]]);
  const param_groups = [{ params: ['a'], lr: lrs[0] }, { params: ['b'], lr: lrs[1] }];
  return createOptimizer(optimizer, { parameters, param_groups }, optimizer === 'SGD' ? { lr: 0.1, momentum: 0.9 } : { lr: 0.1 });
}

/** |a - b| / |b|, exact zeros compared absolutely. */
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-15);

for (const c of fx.cases) {
  test(`${c.name}: ${c.lrs[0].length} learning rates match PyTorch`, (t) => {
    const opt = twoGroups(c.optimizer, c.group_lrs);
    const scheduler = createScheduler(opt, c.spec);
    const momentum = () => opt.param_groups.map((g) => (c.optimizer === 'SGD' ? (g.momentum as number) : (g.betas as number[])[0]));
    let worst = 0;
    for (let k = 0; k < c.lrs[0].length; k++) {
      if (k > 0) scheduler.step();
      const lrs = scheduler.getLastLr();
      const ms = momentum();
      for (let g = 0; g < 2; g++) {
        const e = rel(lrs[g], c.lrs[g][k]);
        worst = Math.max(worst, e);
        assert.ok(e < 1e-6, `${c.name} step ${k} group ${g}: lr ${lrs[g]}, PyTorch ${c.lrs[g][k]}`);
        assert.equal(opt.param_groups[g].lr, lrs[g]);
        assert.ok(rel(ms[g], c.momentum[g][k]) < 1e-6, `${c.name} step ${k} group ${g}: momentum ${ms[g]}, PyTorch ${c.momentum[g][k]}`);
      }
    }
    t.diagnostic(`max relative error ${worst.toExponential(2)}`);
  });
}

test('a scheduler state_dict resumes the schedule', () => {
  for (const c of fx.cases) {
    const optA = twoGroups(c.optimizer, c.group_lrs);
    const a = createScheduler(optA, c.spec);
    for (let k = 0; k < 37; k++) a.step();
    const optB = twoGroups(c.optimizer, c.group_lrs);
    const b = createScheduler(optB, c.spec);
    b.loadStateDict(JSON.parse(JSON.stringify(a.stateDict())));
    optB.loadStateDict(optA.stateDict());
    for (let k = 37; k < c.lrs[0].length - 1; k++) {
      a.step();
      b.step();
    }
    assert.deepEqual(b.getLastLr(), a.getLastLr(), c.name);
    b.getLastLr().forEach((lr, g) => assert.ok(rel(lr, c.lrs[g].at(-1)!) < 1e-6, c.name));
  }
});

function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof NnsError, String(e));
    assert.equal(e.code, 'NNS_ERR_TRAIN_OPTIONS_INVALID');
    assert.match(e.message, pattern);
    return true;
  });
}

test('scheduler options are validated, naming the option', () => {
  const opt = () => new SGD(new Map([['w', new Float32Array(2)]]), { lr: 0.1 });
  rejects(() => createScheduler(opt(), { name: 'PolyLR' }), new RegExp(`unknown LR scheduler "PolyLR"; known schedulers are ${SCHEDULER_NAMES.join(', ')}`));
  rejects(() => createScheduler(opt(), { name: 'steplr', step_size: 0 }), /StepLR step_size: expected a positive integer, got 0/);
  rejects(() => createScheduler(opt(), { name: 'StepLR', step_size: 3, gama: 0.5 }), /StepLR has no option "gama"; its options are step_size, gamma/);
  rejects(() => createScheduler(opt(), { name: 'CosineAnnealingLR', T_max: 10, interval: 'batch' as never }), /scheduler\.interval: expected "epoch" or "step"/);
  rejects(() => createScheduler(opt(), { name: 'LinearLR', start_factor: 0 }), /LinearLR start_factor: expected 0 < start_factor <= 1/);
  rejects(() => createScheduler(opt(), { name: 'OneCycleLR', max_lr: 0.1 }), /OneCycleLR: give total_steps, or epochs and steps_per_epoch/);
  rejects(() => createScheduler(opt(), { name: 'OneCycleLR', max_lr: [0.1, 0.2], total_steps: 10 }), /OneCycleLR max_lr: expected 1 values \(one per param group\), got 2/);
  rejects(() => createScheduler(opt(), { name: 'OneCycleLR', max_lr: 0.1, total_steps: 10, pct_start: 0.05 }), /leaves phase 1 without steps/);
  rejects(() => createScheduler(new Adagrad(new Map([['w', new Float32Array(2)]])), { name: 'OneCycleLR', max_lr: 0.1, total_steps: 10 }), /no momentum or betas to cycle; set cycle_momentum: false/);
  rejects(() => createScheduler(opt(), { name: 'SequentialLR', schedulers: [{ name: 'StepLR', step_size: 2 }], milestones: [3] }), /SequentialLR milestones: expected 0 milestones for 1 schedulers/);
  rejects(() => createScheduler(opt(), { name: 'OneCycleLR', max_lr: 0.1, total_steps: 10, warmup: { total_iters: 2 } }), /OneCycleLR warms up by itself/);
});

test('OneCycleLR refuses to step past total_steps, as torch does', () => {
  const o = new SGD(new Map([['w', new Float32Array(2)]]), { lr: 0.1, momentum: 0.9 });
  const s = createScheduler(o, { name: 'OneCycleLR', max_lr: 0.1, total_steps: 5 });
  for (let k = 0; k < 5; k++) s.step();
  rejects(() => s.step(), /tried to step 7 times; the specified number of total steps is 5/);
});

test('interval defaults to epoch, OneCycleLR to step; a spec may set it', () => {
  const o = () => new SGD(new Map([['w', new Float32Array(2)]]), { lr: 0.1, momentum: 0.9 });
  assert.equal(createScheduler(o(), { name: 'StepLR', step_size: 2 }).interval, 'epoch');
  assert.equal(createScheduler(o(), { name: 'OneCycleLR', max_lr: 1, total_steps: 10 }).interval, 'step');
  assert.equal(createScheduler(o(), { name: 'CosineAnnealingLR', T_max: 1000, interval: 'step' }).interval, 'step');
  // The classes are usable directly too.
  assert.deepEqual(new StepLR(o(), { step_size: 1, gamma: 0.5 }).getLastLr(), [0.1]);
  assert.deepEqual(new CosineAnnealingLR(o(), { T_max: 10 }).getLastLr(), [0.1]);
});
