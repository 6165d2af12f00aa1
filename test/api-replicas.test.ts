import { apiReplicasSuite } from './suites/api-replicas';

apiReplicasSuite('single');
