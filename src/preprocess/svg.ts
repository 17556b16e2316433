/**
 * SVG -> PNG, for pictures nnserve draws itself (the training loss curve). sharp renders SVG
 * with librsvg; the SVG is our own text, never a user upload.
 */
import sharp from 'sharp';

/** Renders an SVG document to PNG bytes at its own width and height. */
export async function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg, 'utf8')).png({ compressionLevel: 9 }).toBuffer();
}
