import { workerKillRandomSuite } from '../suites/worker-kill-random';

// On a Redis Cluster of the file's own (three primaries, three replicas).
workerKillRandomSuite('cluster');
