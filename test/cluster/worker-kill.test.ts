import { workerKillSuite } from '../suites/worker-kill';

// On a Redis Cluster of the file's own (three primaries, three replicas).
workerKillSuite('cluster');
