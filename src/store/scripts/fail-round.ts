import { DROP_ROUND_DATA, FORGET_DEVICES, FORGET_OLD_FAILURE } from './common';

/** Lua: any open phase -> failed (see the header). */
export const FAIL_ROUND = `
--[[
  selecting | reporting | closed | finalizing -> failed: records why, and discards the attempt's partials,
  covered set, broadcast, round key and device set, so that no aggregate of too few clients survives, and
  moves its tasks (with them every queued upload) to the sweep (see dropRoundData): a failed attempt keeps
  only its hash (counts and error). The round forgets its oldest failure beyond ARGV[7] (forgetOldFailure).
  The plan's state is untouched: the engine reopens the round as the next attempt.

  Input:
    KEYS[1]  round attempt hash
    KEYS[2]  round attempt tasks hash
    KEYS[3]  round attempt covered set
    KEYS[4]  round attempt partials set
    KEYS[5]  round attempt devices set
    KEYS[6]  round attempt broadcast
    KEYS[7]  plan list of kept broadcasts
    KEYS[8]  plan sweep set
    KEYS[9]  round attempt garbage tasks hash (KEYS[2] is renamed to it)
    KEYS[10] round attempt garbage partials set (KEYS[4] is renamed to it past PARTIALS_IN_SCRIPT workers)
    KEYS[11] plan history list

    ARGV[1]  tag 'n.a'
    ARGV[2]  error (why the attempt failed)
    ARGV[3]  now (ms)
    ARGV[4]  round key prefix (an attempt's hash is ARGV[4] .. 'n.a')
    ARGV[5]  round n
    ARGV[6]  attempt a
    ARGV[7]  failed attempts of a round to keep (RETAIN_FAILED_ATTEMPTS, >= 1)

  Output:
    {changed, phase}  changed 1 if the attempt moved to 'failed', else 0 (it was completed or failed
                      already); phase after the call, '' if the attempt does not exist
]]
${DROP_ROUND_DATA}
${FORGET_DEVICES}
${FORGET_OLD_FAILURE}
local phase = redis.call('HGET', KEYS[1], 'phase')
if not phase then return {0, ''} end
if phase == 'completed' or phase == 'failed' then return {0, phase} end
redis.call('HSET', KEYS[1], 'phase', 'failed', 'error', ARGV[2], 'finished_at', ARGV[3])
dropRoundData(KEYS[2], KEYS[3], KEYS[4], KEYS[9], KEYS[10], KEYS[8], ARGV[1], ARGV[4])
forgetDevices(KEYS[1], KEYS[5])
-- The broadcast's entry is the list's last one (the failed attempt was the current one): LREM from the tail.
redis.call('UNLINK', KEYS[6])
redis.call('LREM', KEYS[7], -1, ARGV[1])
forgetOldFailure(KEYS[11], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
return {1, 'failed'}
`;
