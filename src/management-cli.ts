/**
 * `nnserve register|list|describe|scale|unregister|set-default` against a running server's
 * management API, with the management key read from the key file.
 */
import { readFileSync } from 'node:fs';
import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';

const HELP = `usage: nnserve <command> [--address http://127.0.0.1:8081] [--key-file key_file.json] ...
  register   (--url NAME.mar|URL | --file ARCHIVE.mar) [--model-name N] [--initial-workers K]
             [--batch-size B] [--max-batch-delay MS] [--async]
  list       [--limit N]
  describe   MODEL [VERSION|all]
  scale      MODEL [VERSION] --min-worker N [--max-worker M] [--sync]
  unregister MODEL [VERSION]
  set-default MODEL VERSION`;


export async function runManagementCli(cmd: string, argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const flags: Record<string, string | true> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') {
      console.log(HELP);
      return 0;
    }
    if (a.startsWith('--')) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) flags[a.slice(2)] = true;
      else flags[a.slice(2)] = argv[++i]!;
    } else positional.push(a);
  }
  const address = String(flags.address ?? env.NNSERVE_MANAGEMENT_ADDRESS ?? 'http://127.0.0.1:8081').replace(/\/$/, '');
  const keyFile = String(flags['key-file'] ?? env.NNSERVE_KEY_FILE ?? 'key_file.json');
  let key: string | undefined;
  try {
    key = (JSON.parse(readFileSync(keyFile, 'utf8')) as { management?: { key?: string } }).management?.key;
  } catch {
    key = undefined; // the server may run with disable_token_authorization
  }
  const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
  const q = (o: Record<string, string | true | undefined>) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(o)) if (v !== undefined) p.set(k, String(v));
    const s = p.toString();
    return s ? `?${s}` : '';
  };
  const [model, version] = positional;
  const path = (...parts: (string | undefined)[]) => parts.filter(Boolean).map((p) => encodeURIComponent(p!)).join('/');
  let res: Response;
  switch (cmd) {
    case 'register': {
      const opts = { model_name: flags['model-name'], initial_workers: flags['initial-workers'], batch_size: flags['batch-size'], max_batch_delay: flags['max-batch-delay'], synchronous: flags.async ? 'false' : undefined };
      if (typeof flags.file === 'string') {
        const form = new FormData();
        for (const [k, v] of Object.entries(opts)) if (v !== undefined) form.set(k, String(v));
        form.set('file', await openAsBlob(flags.file), basename(flags.file));
        res = await fetch(`${address}/models`, { method: 'POST', headers, body: form });
      } else {
        if (typeof flags.url !== 'string') return usage('register needs --url or --file');
        res = await fetch(`${address}/models${q({ url: flags.url, ...opts })}`, { method: 'POST', headers });
      }
      break;
    }
    case 'list':
      res = await fetch(`${address}/models${q({ limit: flags.limit })}`, { headers });
      break;
    case 'describe':
      if (!model) return usage('describe needs MODEL');
      res = await fetch(`${address}/models/${path(model, version)}`, { headers });
      break;
    case 'scale':
      if (!model || flags['min-worker'] === undefined) return usage('scale needs MODEL and --min-worker');
      res = await fetch(`${address}/models/${path(model, version)}${q({ min_worker: flags['min-worker'], max_worker: flags['max-worker'], synchronous: flags.sync ? 'true' : undefined })}`, { method: 'PUT', headers });
      break;
    case 'unregister':
      if (!model) return usage('unregister needs MODEL');
      res = await fetch(`${address}/models/${path(model, version)}`, { method: 'DELETE', headers });
      break;
    case 'set-default':
      if (!model || !version) return usage('set-default needs MODEL and VERSION');
      res = await fetch(`${address}/models/${path(model, version)}/set-default`, { method: 'PUT', headers });
      break;
    default:
      return usage(`unknown command ${cmd}`);
  }
  const text = await res.text();
  (res.ok ? console.log : console.error)(text);
  return res.ok ? 0 : 1;
}

function usage(msg: string): number {
  console.error(`nnserve: ${msg}\n${HELP}`);
  return 2;
}
