import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERRORS, nnsError, toHttp } from '../src/errors.js';

test('every error code is documented in docs/errors.md with its status', () => {
  const doc = readFileSync('docs/errors.md', 'utf8');
  for (const e of Object.values(ERRORS)) {
    const row = doc.split('\n').find((l) => l.includes(`\`${e.code}\``));
    assert.ok(row, `${e.code} is not documented`);
    assert.ok(row.includes(`| ${e.status} |`), `${e.code}: docs/errors.md gives another status than ${e.status}`);
  }
});

test('toHttp maps catalogue errors, framework errors and unknown throws', () => {
  assert.deepEqual(toHttp(nnsError('QUEUE_FULL', 'full')), { status: 503, type: 'ServiceUnavailableException', message: 'full', code: 'NNS_ERR_QUEUE_FULL' });
  assert.equal(toHttp(Object.assign(new Error('too big'), { statusCode: 413 })).status, 413);
  assert.equal(toHttp(new Error('boom')).status, 500);
});
