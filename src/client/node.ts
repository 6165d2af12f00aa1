/**
 * The Node-only parts of the client SDK: a file-backed example store and device id store. Kept out of
 * `./index` so that a browser bundle of the SDK never reaches `fs`.
 */
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { TffType } from '../compute/types';
import { mergeExamples, readClientsCsv, type ClientExamples } from '../data';
import type { DeviceIdStore } from './device';
import { emptyExamples, type ExampleStore } from './example-store';

/**
 * Examples in clients CSV files (README, "Build and run a plan locally"), one file per collection. Every
 * row is this client's, whatever its `client_id` (a device's export of its own data). The file is read at
 * each task, so that data written between tasks is used from the next one on.
 */
export class CsvExampleStore implements ExampleStore {
  private readonly files: ReadonlyMap<string, string>;

  constructor(files: Readonly<Record<string, string>>) {
    this.files = new Map(Object.entries(files));
  }

  async examples(collection: string, element: TffType, _batchSize?: number): Promise<ClientExamples> {
    const file = this.files.get(collection);
    if (file === undefined) return emptyExamples(element);
    const clients = readClientsCsv(await fs.readFile(file, 'utf8'), element, { source: file });
    return clients.size === 0 ? emptyExamples(element) : mergeExamples([...clients.values()], element);
  }
}

/**
 * A device id kept in a file (created with mode 0600, with its directory, on first use), so that a Node
 * client keeps one device id per installation across restarts.
 */
export class FileDeviceIdStore implements DeviceIdStore {
  constructor(private readonly file: string) {}

  get(): string | undefined {
    try {
      const id = fsSync.readFileSync(this.file, 'utf8').trim();
      return id === '' ? undefined : id;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  set(id: string): void {
    fsSync.mkdirSync(path.dirname(this.file), { recursive: true });
    fsSync.writeFileSync(this.file, `${id}\n`, { mode: 0o600 });
  }
}
