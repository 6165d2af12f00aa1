/** A private `redis-server`: started on a free port without persistence, stopped with the process. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { delay, freePort, ping } from './redis-probe';

export interface PrivateServer {
  readonly url: string;
  readonly child: ChildProcess;
  readonly dir: string;
  stop(): Promise<void>;
}

/** Starts `redis-server` on a free port; undefined when the binary is not on PATH. */
export async function startPrivateServer(
  binary: string,
  timeoutMs: number,
): Promise<PrivateServer | undefined> {
  // Every wait below is unref'd (so that shutdown never hangs on one), and so is the child: without this
  // handle nothing would keep the process alive while the server starts, and Node would exit silently.
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    return await startPrivateServerAttempts(binary, timeoutMs);
  } finally {
    clearInterval(keepAlive);
  }
}

async function startPrivateServerAttempts(
  binary: string,
  timeoutMs: number,
): Promise<PrivateServer | undefined> {
  let lastError: Error | undefined;
  // A free port can be taken by someone else between the probe and the bind; try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roundhouse-redis-'));
    const logFile = path.join(dir, 'redis.log');
    const child = spawn(
      binary,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--logfile',
        logFile,
        '--daemonize',
        'no',
      ],
      // Its own process group, so that a Ctrl-C in the terminal reaches only us and we stop Redis last, after
      // the workers have let go of it. unref: the process may exit without waiting for it; 'exit' kills it.
      { stdio: 'ignore', detached: true },
    );
    child.unref();
    const server = privateServer(`redis://127.0.0.1:${port}`, child, dir);
    const outcome = await waitUntilUp(server, timeoutMs);
    if (outcome === 'up') return server;
    const log = readTail(logFile);
    await server.stop();
    if (outcome === 'missing') return undefined;
    lastError = new Error(`redis-server on port ${port} did not start (${outcome})${log ? `: ${log}` : ''}`);
  }
  throw lastError ?? new Error('redis-server did not start');
}

function privateServer(url: string, child: ChildProcess, dir: string): PrivateServer {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
    // A child that could not be spawned (ENOENT) emits 'error' and no 'exit'; with no listener it would throw.
    child.on('error', () => resolve());
  });
  const killNow = (): void => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined)
      child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // 'exit' handlers run synchronously: SIGKILL needs no waiting, and the server holds nothing worth saving.
  process.once('exit', killNow);
  let stopping: Promise<void> | undefined;
  return {
    url,
    child,
    dir,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
          // The child is unref'd: with nothing else left to do, Node would exit before its 'exit' event, and
          // the caller's shutdown would never finish (nor log that it stopped).
          child.ref();
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 3000).unref();
          await exited;
          clearTimeout(timer);
        }
        process.removeListener('exit', killNow);
        fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

type StartOutcome = 'up' | 'missing' | 'exited' | 'timeout';

async function waitUntilUp(server: PrivateServer, timeoutMs: number): Promise<StartOutcome> {
  let gone: StartOutcome | undefined;
  server.child.once(
    'error',
    (e: NodeJS.ErrnoException) => (gone = e.code === 'ENOENT' ? 'missing' : 'exited'),
  );
  server.child.once('exit', () => (gone ??= 'exited'));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gone) return gone;
    try {
      await ping(server.url, 250);
      return 'up';
    } catch {
      await delay(50);
    }
  }
  return gone ?? 'timeout';
}

function readTail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return '';
  }
}
