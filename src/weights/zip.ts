/**
 * The part of the zip format (PKWARE APPNOTE 6.3) torch.save writes: a central directory,
 * stored or deflated entries, zip64 sizes. Reads from memory; every offset is bounds-checked.
 */
import { inflateRawSync } from 'node:zlib';
import { nnsError } from '../errors.js';

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD = 0x06054b50;
const EOCD64_LOCATOR = 0x07064b50;
const EOCD64 = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array, private readonly label: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.readDirectory();
  }

  private bad(msg: string): never {
    throw nnsError('WEIGHTS_INVALID', `"${this.label}": ${msg}`);
  }

  private u16(o: number): number {
    if (o + 2 > this.bytes.length) this.bad('zip structure runs past the end of the file (truncated?)');
    return this.view.getUint16(o, true);
  }

  private u32(o: number): number {
    if (o + 4 > this.bytes.length) this.bad('zip structure runs past the end of the file (truncated?)');
    return this.view.getUint32(o, true);
  }

  private u64(o: number): number {
    if (o + 8 > this.bytes.length) this.bad('zip structure runs past the end of the file (truncated?)');
    const v = this.view.getBigUint64(o, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.bad('zip64 size or offset is too large');
    return Number(v);
  }

  private readDirectory(): void {
    const b = this.bytes;
    let eocd = -1;
    for (let o = b.length - 22; o >= Math.max(0, b.length - 22 - 65535); o--) {
      if (this.view.getUint32(o, true) === EOCD) { eocd = o; break; }
    }
    if (eocd < 0) this.bad('not a zip archive (no end of central directory; truncated?)');
    let count = this.u16(eocd + 10);
    let dirOffset = this.u32(eocd + 16);
    if (eocd >= 20 && this.u32(eocd - 20) === EOCD64_LOCATOR) {
      const e64 = this.u64(eocd - 20 + 8);
      if (this.u32(e64) !== EOCD64) this.bad('corrupt zip64 end of central directory');
      count = this.u64(e64 + 32);
      dirOffset = this.u64(e64 + 48);
    }
    let o = dirOffset;
    for (let i = 0; i < count; i++) {
      if (this.u32(o) !== CENTRAL) this.bad('corrupt zip central directory');
      const method = this.u16(o + 10);
      let compressedSize = this.u32(o + 20);
      let size = this.u32(o + 24);
      const nameLen = this.u16(o + 28);
      const extraLen = this.u16(o + 30);
      const commentLen = this.u16(o + 32);
      let localHeaderOffset = this.u32(o + 42);
      if (o + 46 + nameLen > b.length) this.bad('zip entry name runs past the end of the file');
      const name = new TextDecoder().decode(b.subarray(o + 46, o + 46 + nameLen));
      // zip64 extended information: the fields that were 0xFFFFFFFF, in this order.
      let e = o + 46 + nameLen;
      const extraEnd = e + extraLen;
      while (e + 4 <= extraEnd) {
        const id = this.u16(e);
        const len = this.u16(e + 2);
        if (id === 0x0001) {
          let p = e + 4;
          if (size === 0xffffffff) { size = this.u64(p); p += 8; }
          if (compressedSize === 0xffffffff) { compressedSize = this.u64(p); p += 8; }
          if (localHeaderOffset === 0xffffffff) { localHeaderOffset = this.u64(p); }
        }
        e += 4 + len;
      }
      this.entries.set(name, { name, method, compressedSize, size, localHeaderOffset });
      o = extraEnd + commentLen;
    }
  }

  /** The entry's bytes (a view for stored entries). */
  read(name: string): Uint8Array {
    const entry = this.entries.get(name);
    if (!entry) this.bad(`zip entry "${name}" is missing`);
    const o = entry.localHeaderOffset;
    if (this.u32(o) !== LOCAL) this.bad(`corrupt local header for "${name}"`);
    const start = o + 30 + this.u16(o + 26) + this.u16(o + 28);
    const end = start + entry.compressedSize;
    if (end > this.bytes.length) this.bad(`zip entry "${name}" runs past the end of the file (truncated?)`);
    const raw = this.bytes.subarray(start, end);
    if (entry.method === 0) return raw;
    if (entry.method === 8) {
      try {
        const out = inflateRawSync(raw, { maxOutputLength: entry.size });
        if (out.length !== entry.size) this.bad(`zip entry "${name}" inflates to ${out.length} bytes, expected ${entry.size}`);
        return out;
      } catch (e) {
        return this.bad(`zip entry "${name}" cannot be inflated: ${(e as Error).message}`);
      }
    }
    return this.bad(`zip entry "${name}" uses unsupported compression method ${entry.method}`);
  }
}
