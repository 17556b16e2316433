/** Request builders for the image and text HTTP tests. */
import { randomBytes } from 'node:crypto';

export interface FormField { name: string; data: Buffer | string; filename?: string; type?: string }

/** A multipart/form-data body, as curl -F or a browser form sends it. */
export function multipart(fields: FormField[]): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----nnserve${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const f of fields) {
    const disp = `form-data; name="${f.name}"${f.filename ? `; filename="${f.filename}"` : ''}`;
    const type = f.type ?? (f.filename ? 'application/octet-stream' : undefined);
    chunks.push(Buffer.from(`--${boundary}\r\ncontent-disposition: ${disp}\r\n${type ? `content-type: ${type}\r\n` : ''}\r\n`));
    chunks.push(Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** The PNGs of a length-prefixed .pngs fixture (tools/make_image_fixtures.py). */
export function splitPngs(blob: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < blob.length;) {
    const n = blob.readUInt32LE(off);
    out.push(blob.subarray(off + 4, off + 4 + n));
    off += 4 + n;
  }
  return out;
}
