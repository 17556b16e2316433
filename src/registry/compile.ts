/** Architecture archives: architecture JSON + weights (.pth or .safetensors) -> ONNX bytes. */
import type { OpenedArchive } from '../archive/mar.js';
import { compileFromFiles, type CompiledModel } from '../compiler/index.js';
import { isNnsError, nnsError } from '../errors.js';

export async function compileModel(archive: OpenedArchive): Promise<CompiledModel> {
  const m = archive.manifest.model;
  try {
    return await compileFromFiles(archive.resolveFile(m.architecture!), archive.resolveFile(m.serializedFile));
  } catch (e) {
    // Name the archive as well as the module: the message reaches whoever registered it.
    if (isNnsError(e)) throw nnsError(errorKind(e.code), `${archive.archiveName}: ${e.message}`);
    throw e;
  }
}

function errorKind(code: string): Parameters<typeof nnsError>[0] {
  const kind = code.replace(/^NNS_ERR_/, '');
  return kind as Parameters<typeof nnsError>[0];
}
