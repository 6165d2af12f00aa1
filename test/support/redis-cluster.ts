import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

const run = promisify(execFile);

/** One redis-server of a test cluster. */
interface ClusterNode {
  readonly port: number;
  child: ChildProcess;
}

/**
 * How long a primary may be silent before its replica takes over (`cluster-node-timeout`). Not shorter: on
 * a loaded 2-core machine a starved redis-server can miss 2 s of pings, and a failover nobody asked for
 * moves the slots a test is reading.
 */
const NODE_TIMEOUT_MS = 5000;

/**
 * A local Redis Cluster of a test's own: `primaries` redis-server processes with `--cluster-enabled yes`,
 * each with `replicas` replicas, on free ports (each port's cluster bus, port + 10000, free too), joined with
 * `redis-cli --cluster create`, with append-only persistence in a temporary directory. Fails, never skips, when redis-server
 * or redis-cli is not on PATH.
 */
export class TestRedisCluster {
  private constructor(
    readonly dir: string,
    private readonly nodes: ClusterNode[],
  ) {}

  static async start(options: { primaries?: number; replicas?: number } = {}): Promise<TestRedisCluster> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await TestRedisCluster.startOnce(options);
      } catch (e) {
        // A port found free can be taken before redis-server binds it (outgoing connections draw from the
        // same ephemeral range; seen in CI): other ports, a few times, then the failure as it is.
        if (!(e instanceof NodeExited) || attempt >= 3) throw e;
      }
    }
  }

  private static async startOnce(
    options: { primaries?: number; replicas?: number } = {},
  ): Promise<TestRedisCluster> {
    const primaries = options.primaries ?? 3;
    const replicas = options.replicas ?? 1;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roundhouse-test-cluster-'));
    const ports = await clusterPorts(primaries * (1 + replicas));
    const cluster = new TestRedisCluster(
      dir,
      ports.map((port) => ({ port, child: startNode(port, dir) })),
    );
    try {
      await Promise.all(cluster.nodes.map((n) => waitForPing(n)));
      await run('redis-cli', [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ]);
      await cluster.waitUntilHealthy();
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  /** The nodes as ioredis Cluster startup nodes. */
  get startupNodes(): { host: string; port: number }[] {
    return this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  }

  /** A `redis+cluster://` URL naming every node. */
  get url(): string {
    return `redis+cluster://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  }

  /** The port of the live primary that serves `key`'s slot. */
  async primaryOf(key: string): Promise<number> {
    const node = this.live()[0]!;
    const slot = await withNode(node.port, (r) => r.call('CLUSTER', 'KEYSLOT', key) as Promise<number>);
    const shards = await withNode(node.port, (r) => r.call('CLUSTER', 'SLOTS') as Promise<SlotRange[]>);
    const range = shards.find(([from, to]) => slot >= from && slot <= to);
    if (!range) throw new Error(`no node serves slot ${slot}`);
    return Number(range[2][1]);
  }

  /**
   * SIGKILLs the node on `port` (a primary: its replica takes over after cluster-node-timeout) and waits
   * until every live node says the cluster is ok again.
   */
  async kill(port: number): Promise<void> {
    const node = this.nodes.find((n) => n.port === port);
    if (!node) throw new Error(`no node on port ${port}`);
    if (node.child.exitCode === null && node.child.signalCode === null) {
      const exited = new Promise((r) => node.child.once('exit', r));
      node.child.kill('SIGKILL');
      await exited;
    }
    // Live nodes say ok until they notice the loss; done when a replica serves the dead node's slots.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const live = this.live()[0]!;
      const shards = await withNode(
        live.port,
        (r) => r.call('CLUSTER', 'SLOTS') as Promise<SlotRange[]>,
      ).catch(() => undefined);
      if (shards && !shards.some((range) => Number(range[2][1]) === port)) break;
      if (Date.now() > deadline) throw new Error(`no replica took over from ${port} in 120 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await this.waitUntilHealthy();
  }

  /** Stops every node (SIGKILL: a test cluster keeps nothing) and deletes the data. */
  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        if (n.child.exitCode !== null || n.child.signalCode !== null) return;
        const exited = new Promise((r) => n.child.once('exit', r));
        n.child.kill('SIGKILL');
        await exited;
      }),
    );
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private live(): ClusterNode[] {
    return this.nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);
  }

  /** Waits until every live node says `cluster_state:ok` and every live replica has synced. */
  private async waitUntilHealthy(): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const states = await Promise.all(
        this.live().map((n) =>
          withNode(n.port, (r) => r.call('CLUSTER', 'INFO') as Promise<string>).catch(() => ''),
        ),
      );
      // A replica whose first sync is not done cannot take over: wait for every link to be up too.
      const links = await Promise.all(
        this.live().map((n) =>
          withNode(n.port, (r) => r.info('replication') as Promise<string>).catch(() => ''),
        ),
      );
      const synced = links.every((info) => !/role:slave/.test(info) || /master_link_status:up/.test(info));
      if (states.every((s) => /cluster_state:ok/.test(s)) && synced) return;
      if (Date.now() > deadline)
        throw new Error(`the test cluster is not ok after 30 s: ${states.join(' | ')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A CLUSTER SLOTS entry: first slot, last slot, then [host, port, id] of the primary and its replicas. */
type SlotRange = [number, number, [string, number, string], ...unknown[]];

function startNode(port: number, dir: string): ChildProcess {
  return spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      path.join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout',
      String(NODE_TIMEOUT_MS),
      '--appendonly',
      'yes',
      '--appendfilename',
      `appendonly-${port}.aof`,
      '--appenddirname',
      `aof-${port}`,
      '--save',
      '',
      '--dir',
      dir,
      '--daemonize',
      'no',
      '--logfile',
      path.join(dir, `redis-${port}.log`),
      // A replica can be promoted only once its first sync is done; by default a primary waits 5 s for
      // more replicas before it streams that sync.
      '--repl-diskless-sync-delay',
      '0',
    ],
    { stdio: 'ignore' },
  );
}

/** A node's redis-server exited while starting (its port taken, most often). */
class NodeExited extends Error {
  constructor(port: number, code: number) {
    super(`redis-server on ${port} exited with ${code}`);
  }
}

async function waitForPing(node: ClusterNode): Promise<void> {
  const spawnError = new Promise<Error>((resolve) => node.child.once('error', resolve));
  const deadline = Date.now() + 15_000;
  for (;;) {
    const failed = await Promise.race([spawnError, new Promise((r) => setTimeout(r, 50, undefined))]);
    if (failed) throw new Error(`cannot start redis-server (is it on PATH?): ${String(failed)}`);
    if (node.child.exitCode !== null) throw new NodeExited(node.port, node.child.exitCode);
    try {
      if ((await withNode(node.port, (r) => r.ping())) === 'PONG') return;
    } catch {
      if (Date.now() > deadline) throw new Error(`redis-server on ${node.port} did not answer in 15 s`);
    }
  }
}

/** Runs `f` on a short-lived plain connection to one node. */
async function withNode<T>(port: number, f: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await f(r);
  } finally {
    r.disconnect();
  }
}

/** `count` ports that are free, each with its cluster bus port (port + 10000) free too. */
async function clusterPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await freeAt(0);
    if (port + 10000 > 65535 || ports.includes(port)) continue;
    if ((await freeAt(port + 10000)) === 0) continue;
    ports.push(port);
  }
  return ports;
}

/** Binds `port` (0: any) on 127.0.0.1 and releases it; the port bound, or 0 when it was taken. */
function freeAt(port: number): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(0));
    srv.listen(port, '127.0.0.1', () => {
      const bound = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(bound));
    });
  });
}
