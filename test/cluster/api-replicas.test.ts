import { apiReplicasSuite } from '../suites/api-replicas';

// On a Redis Cluster of the file's own (three primaries, three replicas).
apiReplicasSuite('cluster');
