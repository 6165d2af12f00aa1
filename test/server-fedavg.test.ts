import { serverFedAvgSuite } from './suites/server-fedavg';

serverFedAvgSuite('single');
