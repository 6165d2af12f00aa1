import { workerCrashPointsSuite } from '../suites/worker-crash-points';

workerCrashPointsSuite('single');
