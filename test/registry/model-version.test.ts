import assert from 'node:assert/strict';
import { test } from 'node:test';
import { autoIntraOpThreads } from '../../src/registry/model-version.js';

test('intra_op_threads auto: cores shared by the workers, one thread for a model under 1 MiB', () => {
  const MiB = 1 << 20;
  assert.equal(autoIntraOpThreads(2, 1, 47 * MiB), 2);
  assert.equal(autoIntraOpThreads(2, 2, 47 * MiB), 1);
  assert.equal(autoIntraOpThreads(8, 3, 47 * MiB), 2);
  assert.equal(autoIntraOpThreads(2, 4, 47 * MiB), 1, 'never below one');
  assert.equal(autoIntraOpThreads(2, 1, 573), 1, 'the tiny MLP');
  assert.equal(autoIntraOpThreads(2, 1, MiB - 1), 1);
  assert.equal(autoIntraOpThreads(2, 1, MiB), 2);
});
