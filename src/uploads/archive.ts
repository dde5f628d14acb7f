/**
 * Documents from a zip archive on disk, read entry by entry from its central directory (yauzl),
 * so an archive of any size is never held in memory. The archive is checked whole before a
 * single document is yielded — entry count, each entry's size, the total, every name and type —
 * so a bad archive is refused before anything is written; an entry that turns out corrupt while
 * it is read (bad CRC, sizes that lie) fails the whole upload, which the spool then discards.
 */
import { buffer } from "node:stream/consumers";
import yauzl, { type Entry, type ZipFile } from "yauzl";
import { PayloadTooLargeError, ValidationError } from "../errors";
import type { NewDocument } from "../store";
import { inferMimeType } from "../mime";

export interface ArchiveLimits {
  /** Most documents in one archive. */
  documents: number;
  /** Largest single document, uncompressed. */
  documentBytes: number;
  /** Most uncompressed bytes in the whole archive (a zip bomb is refused from its directory). */
  totalBytes: number;
}

const MAX_NAME = 255;

/** Entries that are not documents: folders and the metadata some zip tools add. */
function isSkipped(entry: Entry): boolean {
  const name = entry.fileName;
  const base = name.slice(name.lastIndexOf("/") + 1);
  return name.endsWith("/") || name.startsWith("__MACOSX/") || base.startsWith("._") || base === ".DS_Store" || base === "Thumbs.db";
}

async function open(file: string): Promise<ZipFile> {
  try {
    return await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, validateEntrySizes: true, strictFileNames: false });
  } catch (err) {
    throw new ValidationError(`archive: not a readable zip file (${(err as Error).message})`);
  }
}

async function* entries(zip: ZipFile): AsyncGenerator<Entry> {
  for (;;) {
    const entry = await new Promise<Entry | null>((resolve, reject) => {
      const done = () => {
        zip.off("entry", onEntry);
        zip.off("end", onEnd);
        zip.off("error", onError);
      };
      const onEntry = (e: Entry) => (done(), resolve(e));
      const onEnd = () => (done(), resolve(null));
      const onError = (err: Error) => (done(), reject(new ValidationError(`archive: corrupt zip file (${err.message})`)));
      zip.on("entry", onEntry);
      zip.on("end", onEnd);
      zip.on("error", onError);
      zip.readEntry();
    });
    if (!entry) return;
    yield entry;
  }
}

/** Checks the archive's directory against the limits; returns how many documents it holds. */
async function check(file: string, limits: ArchiveLimits): Promise<number> {
  const zip = await open(file);
  try {
    if (zip.entryCount > limits.documents * 2 + 1000) {
      throw new PayloadTooLargeError(`archive: ${zip.entryCount} entries; the limit is ${limits.documents} documents`);
    }
    let documents = 0;
    let total = 0;
    for await (const entry of entries(zip)) {
      if (isSkipped(entry)) continue;
      const where = `archive entry ${documents} (${entry.fileName})`;
      documents += 1;
      total += entry.uncompressedSize;
      if (documents > limits.documents) throw new PayloadTooLargeError(`archive: more than ${limits.documents} documents`);
      if (entry.uncompressedSize > limits.documentBytes) {
        throw new PayloadTooLargeError(`${where} is ${entry.uncompressedSize} bytes; the limit is ${limits.documentBytes}`);
      }
      if (total > limits.totalBytes) throw new PayloadTooLargeError(`archive: more than ${limits.totalBytes} bytes uncompressed`);
      if (entry.isEncrypted()) throw new ValidationError(`${where}: encrypted entries are not supported`);
      if (!entry.canDecodeFileData()) throw new ValidationError(`${where}: unsupported compression method ${entry.compressionMethod}`);
      if (entry.fileName.length > MAX_NAME) throw new ValidationError(`${where}: the name is longer than ${MAX_NAME} characters`);
      if (entry.fileName.includes("\u0000")) throw new ValidationError(`${where}: the name contains a NUL character`);
      if (!inferMimeType(entry.fileName)) throw new ValidationError(`${where}: cannot tell the type from the name`);
    }
    if (!documents) throw new ValidationError("archive: the zip file holds no documents");
    return documents;
  } finally {
    zip.close();
  }
}

/**
 * Opens an archive for reading: checks it whole (throwing 400/413 errors), then returns its
 * document count and an iterator over its documents, one in memory at a time.
 */
export async function openArchive(file: string, limits: ArchiveLimits): Promise<{ count: number; documents: AsyncIterable<NewDocument> }> {
  const count = await check(file, limits);
  async function* documents(): AsyncGenerator<NewDocument> {
    const zip = await open(file);
    try {
      for await (const entry of entries(zip)) {
        if (isSkipped(entry)) continue;
        let content: Buffer;
        try {
          content = await buffer(await zip.openReadStreamPromise(entry));
        } catch (err) {
          throw new ValidationError(`archive entry ${entry.fileName}: corrupt (${(err as Error).message})`);
        }
        yield { name: entry.fileName, mimeType: inferMimeType(entry.fileName)!, content };
      }
    } finally {
      zip.close();
    }
  }
  return { count, documents: documents() };
}
