import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERRORS, isNnsError } from '../../src/errors.js';
import { parseModelConfig } from '../../src/archive/model-config.js';

function invalid(yaml: string, re: RegExp): void {
  assert.throws(() => parseModelConfig(yaml, 'mlp.mar/model-config.yaml'), (e: unknown) => {
    assert.ok(isNnsError(e));
    assert.equal(e.code, ERRORS.MODEL_CONFIG_INVALID.code);
    assert.match(e.message, /^mlp\.mar\/model-config\.yaml: /);
    assert.match(e.message, re);
    return true;
  });
}

test('TorchServe keys are read and backend keys pass through to the handler', () => {
  // Shaped like pytorch/serve examples/large_models model-config.yaml files.
  const config = parseModelConfig(
    [
      'minWorkers: 1',
      'maxWorkers: 4',
      'batchSize: 8',
      'maxBatchDelay: 50',
      'responseTimeout: 120',
      'startupTimeout: 300',
      'jobQueueSize: 1000',
      'deviceType: cpu',
      'handler:',
      '  max_length: 50',
      '  labels: [neg, pos]',
    ].join('\n'),
    'x',
  );
  assert.deepEqual(config, {
    minWorkers: 1, maxWorkers: 4, batchSize: 8, maxBatchDelay: 50, responseTimeout: 120, startupTimeout: 300,
    jobQueueSize: 1000, deviceType: 'cpu', handler: { max_length: 50, labels: ['neg', 'pos'] },
  });
});

test('an empty file or a comment-only file is an empty config', () => {
  assert.deepEqual(parseModelConfig('', 'x'), {});
  assert.deepEqual(parseModelConfig('# nothing yet\n', 'x'), {});
});

test('known keys must be integers in range', () => {
  invalid('minWorkers: -1', /"minWorkers".*integer >= 0.*-1/);
  invalid('maxWorkers: 2.5', /"maxWorkers"/);
  invalid('batchSize: 0', /"batchSize".*>= 1/);
  invalid('maxBatchDelay: "100"', /"maxBatchDelay".*"100"/);
  invalid('responseTimeout: 0', /"responseTimeout".*>= 1/);
  invalid('startupTimeout: ten', /"startupTimeout"/);
  invalid('jobQueueSize: 0', /"jobQueueSize"/);
  invalid('minWorkers: 3\nmaxWorkers: 2', /"minWorkers" \(3\) must not exceed "maxWorkers" \(2\)/);
});

test('the document must be a YAML mapping', () => {
  invalid('- minWorkers: 1', /mapping.*a list/);
  invalid('42', /mapping/);
  invalid('minWorkers: [1', /not valid YAML/);
  invalid('batchSize: 1\nbatchSize: 2', /not valid YAML/);
});

test('YAML tags that would build objects are not honoured', () => {
  // CVE-2022-1471 (SnakeYAML) let TorchServe's YAML build arbitrary Java objects; here an unknown tag stays data.
  const config = parseModelConfig('handler: !!js/function "function () { return 1 }"', 'x');
  assert.equal(typeof config.handler, 'string');
});
