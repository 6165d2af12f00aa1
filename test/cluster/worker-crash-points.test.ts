import { workerCrashPointsSuite } from '../suites/worker-crash-points';

// On a Redis Cluster of the file's own (three primaries, three replicas).
workerCrashPointsSuite('cluster');
