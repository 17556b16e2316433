/** Architecture archives: architecture JSON + weights -> ONNX bytes, through the compiler. */
import type { OpenedArchive } from '../archive/mar.js';
import { nnsError } from '../errors.js';

export async function compileModel(archive: OpenedArchive): Promise<{ onnx: Uint8Array }> {
  throw nnsError('ARCH_INVALID', `${archive.archiveName}: architecture archives are not supported by this build yet`);
}
