import { apiKillSuite } from '../suites/api-kill';

// On a Redis Cluster of the file's own (three primaries, three replicas).
apiKillSuite('cluster');
