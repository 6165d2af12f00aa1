/**
 * Where Redis is: one server (`redis://`, `rediss://`) or a Redis Cluster (`redis+cluster://h1:p1,h2:p2`,
 * `rediss+cluster://` for TLS, or `REDIS_CLUSTER_NODES`). A cluster URL lists seed nodes, any of its
 * primaries or replicas; the client learns the rest of the cluster from them.
 */

/** One seed node of a cluster. */
export interface ClusterNode {
  readonly host: string;
  readonly port: number;
}

export type RedisTarget =
  | { readonly kind: 'single'; readonly url: string }
  | {
      readonly kind: 'cluster';
      readonly nodes: readonly ClusterNode[];
      readonly username?: string;
      readonly password?: string;
      readonly tls: boolean;
    };

const CLUSTER_SCHEME = /^(rediss?)\+cluster:\/\//i;

/** Whether `url` names a Redis Cluster. */
export function isClusterUrl(url: string): boolean {
  return CLUSTER_SCHEME.test(url);
}

/**
 * `REDIS_CLUSTER_NODES` (`host:port,host:port`) as a cluster URL, taking user, password and TLS from
 * `REDIS_URL` when that is set too (its host is then ignored).
 */
export function clusterUrlFromNodes(nodes: string, redisUrl: string | undefined): string {
  let scheme = 'redis+cluster';
  let auth = '';
  if (redisUrl) {
    const m = /^(rediss?)(?:\+cluster)?:\/\/(?:([^@/]*)@)?/i.exec(redisUrl);
    if (!m) throw new Error('REDIS_URL must be a redis:// or rediss:// URL when REDIS_CLUSTER_NODES is set');
    scheme = `${m[1]!.toLowerCase()}+cluster`;
    auth = m[2] ? `${m[2]}@` : '';
  }
  const list = nodes
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  if (list.length === 0) throw new Error('REDIS_CLUSTER_NODES lists no node (expected host:port,host:port)');
  return `${scheme}://${auth}${list.join(',')}`;
}

/** Parses a Redis URL; throws a message that names what is wrong. */
export function parseRedisTarget(url: string): RedisTarget {
  const scheme = CLUSTER_SCHEME.exec(url);
  if (!scheme) return { kind: 'single', url };
  const rest = url.slice(scheme[0].length);
  const cut = rest.search(/[/?]/);
  const authority = cut === -1 ? rest : rest.slice(0, cut);
  const tail = cut === -1 ? '' : rest.slice(cut);
  // A cluster has one database (0) and takes its options from the server, not from the URL.
  if (tail !== '' && tail !== '/' && tail !== '/0') {
    throw new Error(
      `cluster URL ${redactUrl(url)}: a cluster has no database number or options (got "${tail}")`,
    );
  }
  const at = authority.lastIndexOf('@');
  const auth = at >= 0 ? authority.slice(0, at) : '';
  const hostPart = authority.slice(at + 1);
  if (hostPart.trim() === '') {
    throw new Error(
      `cluster URL ${redactUrl(url)} lists no node (expected redis+cluster://host:port,host:port)`,
    );
  }
  const nodes = hostPart.split(',').map((spec) => parseNode(spec.trim(), url));
  const [user, ...pass] = auth.split(':');
  return {
    kind: 'cluster',
    nodes,
    ...(user ? { username: decodeURIComponent(user) } : {}),
    ...(pass.length ? { password: decodeURIComponent(pass.join(':')) } : {}),
    tls: scheme[1]!.toLowerCase() === 'rediss',
  };
}

function parseNode(spec: string, url: string): ClusterNode {
  // [v6]:port, host:port, or host alone (port 6379).
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d+))?$/.exec(spec);
  const port = Number(m?.[3] ?? 6379);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`cluster URL ${redactUrl(url)}: "${spec}" is not host:port`);
  }
  return { host: m[1] ?? m[2]!, port };
}

/** The URL with its password replaced by `***`, for logs and errors (cluster URLs included). */
export function redactUrl(url: string): string {
  if (isClusterUrl(url)) return url.replace(/^([^:]+:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '<unparseable Redis URL>';
  }
}
