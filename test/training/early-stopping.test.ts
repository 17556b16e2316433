/** Early stopping as the seed tutorial (6.8) writes it, with min_delta and mode. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NnsError } from '../../src/errors.js';
import { EarlyStopping } from '../../src/training/early-stopping.js';

/** The seed's loop, verbatim in spirit: returns the epoch index at which it breaks, or -1. */
function seedLoop(losses: number[], patience: number): number {
  let best = Infinity;
  let counter = 0;
  for (const [epoch, val] of losses.entries()) {
    if (val > best) {
      counter += 1;
      if (counter > patience) return epoch;
    } else {
      best = val;
      counter = 0;
    }
  }
  return -1;
}

function stopsAt(es: EarlyStopping, metrics: number[]): number {
  for (const [epoch, m] of metrics.entries()) if (es.step(m).stop) return epoch;
  return -1;
}

test('stops where the seed tutorial loop breaks (after patience + 1 worse epochs)', () => {
  const series = [
    [1.0, 0.9, 0.8, 0.85, 0.86, 0.87, 0.88, 0.7],
    [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9],
    [3, 2, 1, 2, 3, 0.5, 1, 2, 3, 4],
    [1, 2, 3, 4, 5],
  ];
  for (const losses of series) {
    for (const patience of [0, 1, 2, 3]) {
      assert.equal(stopsAt(new EarlyStopping({ patience }), losses), seedLoop(losses, patience), `${losses} patience ${patience}`);
    }
  }
});

test('reports improvements, honours min_delta, and mode max for accuracies', () => {
  const es = new EarlyStopping({ patience: 1, min_delta: 0.05 });
  assert.deepEqual(es.step(1.0), { improved: true, stop: false });
  assert.deepEqual(es.step(0.97), { improved: false, stop: false }); // better, but by less than min_delta
  assert.deepEqual(es.step(0.9), { improved: true, stop: false });
  assert.equal(es.best, 0.9);
  assert.equal(es.best_epoch, 2);
  assert.deepEqual(es.step(Number.NaN), { improved: false, stop: false });
  assert.deepEqual(es.step(0.89), { improved: false, stop: true });

  const acc = new EarlyStopping({ patience: 0, mode: 'max' });
  assert.equal(acc.step(0.5).improved, true);
  assert.equal(acc.step(0.6).improved, true);
  assert.deepEqual(acc.step(0.55), { improved: false, stop: true });
});

test('its state survives a checkpoint', () => {
  const a = new EarlyStopping({ patience: 2 });
  [1, 0.5, 0.6].forEach((m) => a.step(m));
  const b = new EarlyStopping({ patience: 2 });
  b.loadStateDict(JSON.parse(JSON.stringify(a.stateDict())));
  assert.deepEqual([b.step(0.7), b.step(0.8)], [a.step(0.7), a.step(0.8)]);
  assert.equal(b.step(0.9).stop, true);
});

test('bad options are refused, naming the option', () => {
  const bad = (o: object, re: RegExp) =>
    assert.throws(() => new EarlyStopping(o), (e: unknown) => e instanceof NnsError && e.code === 'NNS_ERR_TRAIN_OPTIONS_INVALID' && re.test(e.message));
  bad({ patience: -1 }, /early_stopping patience: expected an integer >= 0/);
  bad({ patience: 1.5 }, /patience/);
  bad({ min_delta: -0.1 }, /early_stopping min_delta/);
  bad({ mode: 'maximum' }, /early_stopping mode: expected "min" or "max"/);
});
