/**
 * What a zip archive (a DOCX) says it inflates to, read from its central directory alone, so that a
 * zip bomb is refused before a byte of it is inflated. The sizes are the archive's own claims: a
 * lying archive is still bounded by the extractor's memory limit.
 */

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_FILE_HEADER = 0x02014b50;
/** The end record is 22 bytes plus a comment of at most 65,535. */
const END_RECORD_REACH = 22 + 0xffff;

/**
 * The sum of the uncompressed sizes of every entry; `Infinity` for a Zip64 archive (over 4 GiB or
 * 65,535 entries, never a document we want); `undefined` when `zip` has no readable central directory.
 */
export function zipUncompressedBytes(zip: Buffer): number | undefined {
  let end = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - END_RECORD_REACH); i--) {
    if (zip.readUInt32LE(i) === END_OF_CENTRAL_DIRECTORY) {
      end = i;
      break;
    }
  }
  if (end === -1) return undefined;
  const entries = zip.readUInt16LE(end + 10);
  let offset = zip.readUInt32LE(end + 16);
  if (entries === 0xffff || offset === 0xffffffff) return Infinity;
  let total = 0;
  for (let n = 0; n < entries; n++) {
    if (offset + 46 > zip.length || zip.readUInt32LE(offset) !== CENTRAL_FILE_HEADER) return undefined;
    const size = zip.readUInt32LE(offset + 24);
    if (size === 0xffffffff) return Infinity;
    total += size;
    offset += 46 + zip.readUInt16LE(offset + 28) + zip.readUInt16LE(offset + 30) + zip.readUInt16LE(offset + 32);
  }
  return total;
}
