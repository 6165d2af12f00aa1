import type { Command } from 'commander';
import type { CliIo } from './conventions';

// What a CLI test sees of a command run in-process: `exit` throws so that the test gets the code.
class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** Runs the command `make` builds with `args`, capturing its output and exit code instead of exiting. */
export async function runInProcess(
  make: (io: CliIo) => Command,
  args: readonly string[],
): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  const cmd = make({
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    exit: (code) => {
      throw new Exit(code);
    },
  });
  try {
    await cmd.parseAsync([...args], { from: 'user' });
    return { out, err, code: 0 };
  } catch (e) {
    if (e instanceof Exit) return { out, err, code: e.code };
    throw e;
  }
}
