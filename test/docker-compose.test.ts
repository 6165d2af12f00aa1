import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';

// docker-compose.yml (issue 11, point 3): the default services, and the `cluster` profile with a Redis
// Cluster, API replicas behind a load balancer and workers, are valid as Compose reads them. `docker compose
// config` where the Docker CLI has the compose plugin, else Debian's docker-compose (.ci/run installs it);
// neither needs a Docker engine. Missing both fails: no silent skip.

const root = path.join(__dirname, '..');

function compose(args: string[], env: Record<string, string> = {}): string {
  const opts = { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' as const };
  const plugin = spawnSync('docker', ['compose', 'version'], opts);
  if (plugin.status === 0) return execFileSync('docker', ['compose', ...args], opts);
  return execFileSync('docker-compose', args, opts);
}

describe('docker-compose.yml', () => {
  test('the default services: one Redis, the API and workers; everything else is in the cluster profile', () => {
    expect(compose(['config', '--services']).trim().split('\n')).toEqual(
      expect.arrayContaining(['api', 'redis', 'worker']),
    );
    // Ten services of the profile (six nodes, the join, API replicas, workers, nginx) and no other one
    // carry a profile, so `docker compose up` starts the three above only.
    const config = compose(['config']);
    expect(config.match(/profiles:\s*\n\s*- cluster\n/g)).toHaveLength(10);
    expect(config).not.toMatch(/profiles:\s*\n\s*- (?!cluster\n)/);
  });

  test('the cluster profile: six Redis nodes joined once, three API replicas behind nginx, three workers', () => {
    const env = { OPERATOR_TOKEN: 'op', TOKEN_SECRET: 'secret' };
    const services = compose(['--profile', 'cluster', 'config', '--services'], env).trim().split('\n');
    expect(services).toEqual(
      expect.arrayContaining([
        ...[1, 2, 3, 4, 5, 6].map((n) => `redis-node-${n}`),
        'redis-cluster-init',
        'api-cluster',
        'worker-cluster',
        'lb',
      ]),
    );
    const config = compose(['--profile', 'cluster', 'config'], env);
    // Both roles of the profile find the cluster by its nodes, and the replicas share their secrets.
    expect(
      config.match(/REDIS_CLUSTER_NODES: redis-node-1:6379,redis-node-2:6379,redis-node-3:6379/g),
    ).toHaveLength(2);
    expect(config).toMatch(/TOKEN_SECRET: secret/);
    expect(config).toMatch(/replicas: 3/);
    expect(config).toMatch(/--cluster-enabled yes/);
    expect(config).toMatch(/--cluster-replicas 1/);
    expect(config).toMatch(/nginx\.conf:\/etc\/nginx\/nginx\.conf/);
  });
});
