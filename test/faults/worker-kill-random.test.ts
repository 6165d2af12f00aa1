import { workerKillRandomSuite } from '../suites/worker-kill-random';

workerKillRandomSuite('single');
