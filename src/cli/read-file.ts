import * as fs from 'node:fs';

// Node's messages ("ENOENT: no such file or directory, open 'x'") lead with the code; these lead with the file.
const WHY: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EISDIR: 'is a directory, not a file',
  EACCES: 'permission denied',
  ENOTDIR: 'a part of the path is not a directory',
};

/**
 * Reads a text file a command was given (`-` is stdin), failing with an Error that names the file and the
 * option it came from (`cannot read --data nosuch.csv: no such file`), never a bare ENOENT.
 */
export function readTextFile(file: string, what: string): string {
  return readBinaryFile(file, what).toString('utf8');
}

/** Reads a binary file a command was given (a tensor bundle), with the errors of {@link readTextFile}. */
export function readBinaryFile(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file === '-' ? 0 : file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = (err.code && WHY[err.code]) ?? err.message;
    throw new Error(`cannot read ${what} ${shown(file)}: ${why}`);
  }
}

/** Reads and parses a JSON file a command was given; a parse error names the file too. */
export function readJsonFile(file: string, what: string): unknown {
  const text = readTextFile(file, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} ${shown(file)} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function shown(file: string): string {
  return file === '-' ? '(stdin)' : file;
}
