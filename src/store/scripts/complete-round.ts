import { CHUNKED, DROP_ROUND_DATA, FORGET_DEVICES } from './common';

/** Lua: finalizing -> completed (see the header). */
export const COMPLETE_ROUND = `
--[[
  finalizing -> completed: stores the new server state and the output, deletes the attempt's tasks,
  covered set, partials and any upload left, and marks the plan completed after its last round (unless it
  was cancelled meanwhile). The round hash and the broadcast stay (counts, output, cacheable URL).

  Input:
    KEYS[1]  plan meta hash
    KEYS[2]  plan state (string)
    KEYS[3]  round attempt hash
    KEYS[4]  round attempt tasks hash
    KEYS[5]  round attempt covered set
    KEYS[6]  round attempt partials set
    KEYS[7]  round attempt devices set (normally gone since 'closed'; deleted again for safety)

    ARGV[1]  upload key prefix (an upload is ARGV[1] .. task)
    ARGV[2]  partial key prefix (a partial is ARGV[2] .. worker)
    ARGV[3]  round n
    ARGV[4]  new state bytes
    ARGV[5]  output JSON, '' for none
    ARGV[6]  aggregated_clients
    ARGV[7]  now (ms)

  Output:
    {changed, phase, plan_completed, population}
      changed 1 if the attempt moved to 'completed', else 0; phase after the call ('' if the attempt
      does not exist); plan_completed 1 if this call marked the plan completed (the caller then drops it
      from its population set, a global key this script may not touch); the plan's population
]]
${CHUNKED}
${DROP_ROUND_DATA}
${FORGET_DEVICES}
local phase = redis.call('HGET', KEYS[3], 'phase')
if not phase then return {0, '', 0, ''} end
if phase ~= 'finalizing' then return {0, phase, 0, ''} end

redis.call('SET', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[3], 'phase', 'completed', 'aggregated_clients', ARGV[6], 'finished_at', ARGV[7])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[3], 'output', ARGV[5]) end
dropRoundData(KEYS[4], KEYS[5], KEYS[6], ARGV[1], ARGV[2])
forgetDevices(KEYS[3], KEYS[7])

local meta = redis.call('HMGET', KEYS[1], 'rounds', 'status', 'population')
local done = 0
if tonumber(ARGV[3]) >= (tonumber(meta[1]) or math.huge) and (meta[2] == 'active' or meta[2] == 'paused') then
  redis.call('HSET', KEYS[1], 'status', 'completed')
  done = 1
end
return {1, 'completed', done, meta[3] or ''}
`;
