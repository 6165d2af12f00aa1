import { ATTEMPT_EXTRAS, DROP_ROUND_DATA, FAIL_ATTEMPT, FORGET_DEVICES, FORGET_OLD_FAILURE } from './common';

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
    KEYS[12..]  the attempt's SecAgg keys, the hash of attempt n.(a - keep) and the declared partials
             (attemptExtras(12))

    ARGV[1]  tag 'n.a'
    ARGV[2]  error (why the attempt failed)
    ARGV[3]  now (ms)
    ARGV[4]  the attempt's partial key prefix (a worker's partial is ARGV[4] .. worker)
    ARGV[5]  round n
    ARGV[6]  attempt a
    ARGV[7]  failed attempts of a round to keep (RETAIN_FAILED_ATTEMPTS, >= 1)

  Output:
    {'partials_moved'}  a worker the caller did not declare committed a partial (nothing changed)
    {changed, phase}  changed 1 if the attempt moved to 'failed', else 0 (it was completed or failed
                      already); phase after the call, '' if the attempt does not exist
]]
${ATTEMPT_EXTRAS}
${DROP_ROUND_DATA}
${FORGET_DEVICES}
${FORGET_OLD_FAILURE}
${FAIL_ATTEMPT}
local phase = redis.call('HGET', KEYS[1], 'phase')
if not phase then return {0, ''} end
if phase == 'completed' or phase == 'failed' then return {0, phase} end
local e = attemptExtras(12)
if not partialsDeclared(e, KEYS[4], ARGV[4]) then return {'partials_moved'} end
local k = {round = KEYS[1], tasks = KEYS[2], covered = KEYS[3], partials = KEYS[4], devices = KEYS[5],
  broadcast = KEYS[6], broadcasts = KEYS[7], sweep = KEYS[8], garbageTasks = KEYS[9],
  garbagePartials = KEYS[10], history = KEYS[11]}
failAttempt(k, ARGV[1], ARGV[2], ARGV[3], ARGV[5], ARGV[6], ARGV[7], e)
return {1, 'failed'}
`;
