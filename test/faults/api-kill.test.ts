import { apiKillSuite } from '../suites/api-kill';

apiKillSuite('single');
