import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ping } from '../../src/runtime/redis';
import { freePort } from './cluster';

/**
 * A `redis-server` of a test's own on a free port, with append-only persistence in a temporary directory,
 * so that a test can freeze it (SIGSTOP), stop it and start it again on the same port with its data.
 * Fails, never skips, when `redis-server` is not on PATH.
 */
export class TestRedisServer {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  static async start(): Promise<TestRedisServer> {
    const server = new TestRedisServer(
      await freePort(),
      fs.mkdtempSync(path.join(os.tmpdir(), 'roundhouse-test-redis-')),
    );
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the server (again) on its port and waits until it answers PING. */
  async restart(): Promise<void> {
    if (this.running()) throw new Error('the test redis-server is already running');
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        this.dir,
        '--daemonize',
        'no',
      ],
      { stdio: 'ignore' },
    );
    this.child = child;
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const deadline = Date.now() + 15_000;
    for (;;) {
      const failed = await Promise.race([spawnError, new Promise((r) => setTimeout(r, 50, undefined))]);
      if (failed) throw new Error(`cannot start redis-server (is it on PATH?): ${String(failed)}`);
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      try {
        await ping(this.url, 500);
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not answer in 15 s`);
      }
    }
  }

  /** Freezes the process: connections stay open and nothing answers (a hung or partitioned Redis). */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  thaw(): void {
    this.child?.kill('SIGCONT');
  }

  /** Stops the server (SIGTERM: the append-only file is flushed) and waits for its exit. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !this.running()) return;
    child.kill('SIGCONT');
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }

  /** Stops the server and deletes its data. */
  async remove(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }
}
