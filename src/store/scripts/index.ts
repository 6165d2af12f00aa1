/**
 * The store's Lua scripts, one per atomic step, each opening with a header that lists its KEYS, ARGV and
 * return values. They are TypeScript string constants, not `.lua` files, so that they ship inside the
 * compiled output.
 */
import { LuaScript } from '../lua-script';
import { ACCEPT_UPLOAD } from './accept-upload';
import { COMMIT_PARTIAL } from './commit-partial';
import { COMPLETE_ROUND } from './complete-round';
import { COUNT_FAULT } from './count-fault';
import { RAISE_FENCE } from './raise-fence';
import { COUNT_REJECTED } from './count-rejected';
import { DEADLINE } from './deadline';
import { FAIL_PLAN, STOP_PLAN } from './fail-plan';
import { FAIL_ROUND } from './fail-round';
import { OPEN_ROUND } from './open-round';
import { RECORD_CHECKIN } from './record-checkin';
import { ADVERTISE, SHARE, UNMASK } from './secagg';
import { SET_HELD } from './set-held';
import { SET_STATUS } from './set-status';
import { BEGIN_FINALIZE, CLOSE_ROUND, TO_REPORTING } from './transitions';
import { TRIM_BROADCAST } from './trim-broadcast';
import { TRY_ASSIGN } from './try-assign';
import { ACQUIRE_LEASE, RELEASE_LEASE, RENEW_LEASE } from './worker-lease';

/** Every script, ready to run. */
export const SCRIPTS = {
  acceptUpload: new LuaScript('accept-upload', ACCEPT_UPLOAD),
  acquireLease: new LuaScript('acquire-lease', ACQUIRE_LEASE),
  beginFinalize: new LuaScript('begin-finalize', BEGIN_FINALIZE),
  closeRound: new LuaScript('close-round', CLOSE_ROUND),
  commitPartial: new LuaScript('commit-partial', COMMIT_PARTIAL),
  completeRound: new LuaScript('complete-round', COMPLETE_ROUND),
  countFault: new LuaScript('count-fault', COUNT_FAULT),
  raiseFence: new LuaScript('raise-fence', RAISE_FENCE),
  countRejected: new LuaScript('count-rejected', COUNT_REJECTED),
  deadline: new LuaScript('deadline', DEADLINE),
  failPlan: new LuaScript('fail-plan', FAIL_PLAN),
  stopPlan: new LuaScript('stop-plan', STOP_PLAN),
  failRound: new LuaScript('fail-round', FAIL_ROUND),
  openRound: new LuaScript('open-round', OPEN_ROUND),
  recordCheckin: new LuaScript('record-checkin', RECORD_CHECKIN),
  releaseLease: new LuaScript('release-lease', RELEASE_LEASE),
  renewLease: new LuaScript('renew-lease', RENEW_LEASE),
  secAggAdvertise: new LuaScript('secagg-advertise', ADVERTISE),
  secAggShare: new LuaScript('secagg-share', SHARE),
  secAggUnmask: new LuaScript('secagg-unmask', UNMASK),
  setHeld: new LuaScript('set-held', SET_HELD),
  setStatus: new LuaScript('set-status', SET_STATUS),
  toReporting: new LuaScript('to-reporting', TO_REPORTING),
  trimBroadcast: new LuaScript('trim-broadcast', TRIM_BROADCAST),
  tryAssign: new LuaScript('try-assign', TRY_ASSIGN),
} as const;
