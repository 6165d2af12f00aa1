import { workerKillSuite } from './suites/worker-kill';

workerKillSuite('single');
