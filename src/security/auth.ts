/**
 * Bearer-token authorization, on by default for management (TorchServe 0.11.1 made it the
 * default after ShellTorch). Keys come from config (e.g. a Kubernetes Secret) or are generated
 * at start and written to key_file with mode 0600 (temp file + rename, never world-readable).
 * Unlike TorchServe's 6-byte keys that expire after 60 minutes, keys are 32 random bytes and
 * last until the server restarts or the operator replaces them.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, renameSync, writeFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { nnsError } from '../errors.js';

export interface Keys {
  management: string;
  inference: string;
}

const newKey = () => randomBytes(32).toString('base64url');

export function resolveKeys(config: Config): Keys {
  return { management: config.management_key || newKey(), inference: config.inference_key || newKey() };
}

/** Write the keys for local clients (the CLI reads this file). */
export function writeKeyFile(path: string, keys: Keys): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ management: { key: keys.management }, inference: { key: keys.inference } }, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

function matches(header: string | undefined, key: string): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice(7).trim());
  const want = Buffer.from(key);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** Refuse every request on this instance without the key; `open` paths stay public (probes). */
export function requireKey(app: FastifyInstance, key: string, which: 'management' | 'inference', open: readonly string[] = []): void {
  app.addHook('onRequest', async (req, reply) => {
    if (open.includes(req.url.split('?')[0]!)) return;
    if (!matches(req.headers.authorization, key)) {
      reply.header('www-authenticate', 'Bearer');
      throw nnsError('AUTH_FAILED', `Token Authorization failed: send "Authorization: Bearer <${which} key>" (the key is in the key file or the configured secret)`);
    }
  });
}
