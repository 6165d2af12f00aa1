import { CHUNKED, DROP_ROUND_DATA, FORGET_DEVICES } from './common';

/** Lua: any open phase -> failed (see the header). */
export const FAIL_ROUND = `
--[[
  selecting | reporting | closed | finalizing -> failed: records why, and discards the attempt's tasks,
  covered set, partials, every queued upload, its round key and device set, so that no aggregate of too few clients survives. The
  plan's state is untouched: the engine reopens the round as the next attempt.

  Input:
    KEYS[1]  round attempt hash
    KEYS[2]  round attempt tasks hash
    KEYS[3]  round attempt covered set
    KEYS[4]  round attempt partials set
    KEYS[5]  round attempt devices set

    ARGV[1]  upload key prefix (an upload is ARGV[1] .. task)
    ARGV[2]  partial key prefix (a partial is ARGV[2] .. worker)
    ARGV[3]  error (why the attempt failed)
    ARGV[4]  now (ms)

  Output:
    {changed, phase}  changed 1 if the attempt moved to 'failed', else 0 (it was completed or failed
                      already); phase after the call, '' if the attempt does not exist
]]
${CHUNKED}
${DROP_ROUND_DATA}
${FORGET_DEVICES}
local phase = redis.call('HGET', KEYS[1], 'phase')
if not phase then return {0, ''} end
if phase == 'completed' or phase == 'failed' then return {0, phase} end
redis.call('HSET', KEYS[1], 'phase', 'failed', 'error', ARGV[3], 'finished_at', ARGV[4])
dropRoundData(KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
forgetDevices(KEYS[1], KEYS[5])
return {1, 'failed'}
`;
