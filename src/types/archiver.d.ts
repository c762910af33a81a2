// archiver 8 ships no types and @types/archiver describes the older factory API; this is the part we use.
declare module 'archiver' {
  import { Transform } from 'node:stream';

  interface ZipArchiveOptions {
    zlib?: { level?: number };
    forceZip64?: boolean;
    highWaterMark?: number;
    store?: boolean;
  }

  interface EntryData {
    name: string;
    store?: boolean;
    date?: Date;
  }

  export class ZipArchive extends Transform {
    constructor(options?: ZipArchiveOptions);
    append(source: NodeJS.ReadableStream | Buffer | string, data: EntryData): this;
    finalize(): Promise<void>;
    abort(): this;
    pointer(): number;
  }
}
