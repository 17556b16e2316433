/**
 * SVG -> PNG, for pictures nnserve draws itself (the training loss curve). sharp renders SVG
 * with librsvg; the SVG is our own text, never a user upload.
 */
/** Renders an SVG document to PNG bytes at its own width and height. */
export async function svgToPng(svg: string): Promise<Buffer> {
  // Loaded on first use: sharp costs ~28 MiB of RSS, and `nnserve start` imports this module
  // (through the train command) without ever drawing.
  const { default: sharp } = await import('sharp');
  return sharp(Buffer.from(svg, 'utf8')).png({ compressionLevel: 9 }).toBuffer();
}
