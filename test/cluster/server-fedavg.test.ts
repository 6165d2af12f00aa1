import { serverFedAvgSuite } from '../suites/server-fedavg';

// The same FedAvg through HTTP and two worker processes, on a Redis Cluster (three primaries, three replicas).
serverFedAvgSuite('cluster');
