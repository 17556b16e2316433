/**
 * Where a register call may take an archive from (TorchServe's SSRF history: CVE-2023-43654,
 * CVE-2024-35198). A plain archive name is looked up in the model store. A URL must be
 * http(s), contain no "..", match one of allowed_urls (empty by default: no URLs at all), and
 * not resolve to a loopback, private or link-local address unless allow_internal_urls is set.
 * Redirects are followed by hand so every hop is checked again. The download is streamed to a
 * temp file in the store under max_model_size.
 */
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { splitList, type Config } from '../config.js';
import { nnsError } from '../errors.js';

const MAX_REDIRECTS = 5;

export type ModelSource = { kind: 'store'; archiveName: string } | { kind: 'url'; url: URL };

export function classifyUrl(raw: string, config: Config): ModelSource {
  if (raw.includes('..')) throw nnsError('URL_NOT_ALLOWED', `Relative path is not allowed in url: ${raw}`);
  if (!/^[a-z][a-z0-9+.-]*:/i.test(raw)) {
    if (raw.includes('/') || raw.includes('\\')) throw nnsError('URL_NOT_ALLOWED', `"${raw}" must be an archive name in the model store (no folders) or an http(s) URL`);
    return { kind: 'store', archiveName: raw };
  }
  const url = checkAllowed(raw, config);
  return { kind: 'url', url };
}

function checkAllowed(raw: string, config: Config): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw nnsError('URL_NOT_ALLOWED', `"${raw}" is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw nnsError('URL_NOT_ALLOWED', `URL scheme "${url.protocol}" is not allowed; only http(s) URLs matching allowed_urls`);
  }
  const allowed = splitList(config.allowed_urls);
  if (!allowed.some((re) => new RegExp(`^(?:${re})$`).test(raw))) {
    throw nnsError('URL_NOT_ALLOWED', allowed.length === 0
      ? `model URLs are disabled (allowed_urls is empty); put the archive in the model store or set allowed_urls`
      : `Given URL ${raw} does not match any allowed URL(s)`);
  }
  return url;
}

/** Loopback, private, link-local, unique-local, unspecified and CGNAT ranges. */
export function isInternalAddress(ip: string): boolean {
  if (isIP(ip) === 4) {
    const [a, b] = ip.split('.').map(Number) as [number, number];
    return a === 127 || a === 10 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127);
  }
  const v6 = ip.toLowerCase();
  if (v6.startsWith('::ffff:')) return isInternalAddress(v6.slice(7));
  return v6 === '::1' || v6 === '::' || v6.startsWith('fc') || v6.startsWith('fd') || v6.startsWith('fe80');
}

async function checkHost(url: URL, config: Config): Promise<void> {
  if (config.allow_internal_urls) return;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) ? [host] : (await lookup(host, { all: true }).catch(() => [])).map((a) => a.address);
  if (addresses.length === 0) throw nnsError('DOWNLOAD_FAILED', `cannot resolve host of ${url.href}`);
  const internal = addresses.find(isInternalAddress);
  if (internal) throw nnsError('URL_NOT_ALLOWED', `${url.href} resolves to the internal address ${internal}; set allow_internal_urls=true to allow it`);
}

/** Download to `dest`, re-checking every redirect hop; nothing is left at `dest` on failure. */
export async function download(start: URL, dest: string, config: Config): Promise<void> {
  let url = start;
  for (let hop = 0; ; hop++) {
    await checkHost(url, config);
    const res = await fetch(url, { redirect: 'manual' }).catch((e: Error) => {
      throw nnsError('DOWNLOAD_FAILED', `cannot download ${url.href}: ${e.message}`);
    });
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      if (hop >= MAX_REDIRECTS) throw nnsError('DOWNLOAD_FAILED', `${start.href}: more than ${MAX_REDIRECTS} redirects`);
      url = checkAllowed(new URL(res.headers.get('location')!, url).href, config);
      continue;
    }
    if (!res.ok || !res.body) throw nnsError('DOWNLOAD_FAILED', `cannot download ${url.href}: HTTP ${res.status}`);
    const declared = Number(res.headers.get('content-length') ?? 0);
    if (declared > config.max_model_size) throw nnsError('DOWNLOAD_FAILED', `${url.href} is ${declared} bytes, over max_model_size ${config.max_model_size}`);
    try {
      await pipeline(Readable.fromWeb(res.body as never), sizeLimit(config.max_model_size, url.href), createWriteStream(dest, { flags: 'wx' }));
    } catch (e) {
      await rm(dest, { force: true });
      throw e;
    }
    return;
  }
}

export function sizeLimit(max: number, what: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > max) return done(nnsError('ARCHIVE_TOO_LARGE', `${what} is larger than max_model_size ${max} bytes`));
      done(null, chunk);
    },
  });
}
