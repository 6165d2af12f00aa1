import { ATTEMPT_EXTRAS, DROP_ROUND_DATA, FORGET_DEVICES } from './common';

/** Lua: finalizing -> completed (see the header). */
export const COMPLETE_ROUND = `
--[[
  finalizing -> completed: stores the new server state and the output, deletes the attempt's partials
  and covered set, moves its tasks (with any upload left) to the sweep (see dropRoundData), and marks the
  plan completed after its last round (unless it was cancelled meanwhile). The round hash stays (counts,
  output); the broadcast stays while it is among the plan's last RETAIN_BROADCASTS (the store trims the
  list after this script: trim-broadcast).

  Input:
    KEYS[1]  plan meta hash
    KEYS[2]  plan state (string)
    KEYS[3]  round attempt hash
    KEYS[4]  round attempt tasks hash
    KEYS[5]  round attempt covered set
    KEYS[6]  round attempt partials set
    KEYS[7]  round attempt devices set (normally gone since 'closed'; deleted again for safety)
    KEYS[8]  plan list of kept broadcasts
    KEYS[9]  plan sweep set
    KEYS[10] round attempt garbage tasks hash (KEYS[4] is renamed to it)
    KEYS[11] round attempt garbage partials set (KEYS[6] is renamed to it past PARTIALS_IN_SCRIPT workers)
    KEYS[12..]  the attempt's SecAgg keys, the hash of attempt n.(a - keep) and the declared partials
             (attemptExtras(12))

    ARGV[1]  tag 'n.a'
    ARGV[2]  the attempt's partial key prefix (a worker's partial is ARGV[2] .. worker)
    ARGV[3]  round n
    ARGV[4]  new state bytes
    ARGV[5]  output JSON, '' for none
    ARGV[6]  aggregated_clients
    ARGV[7]  now (ms)
    ARGV[8]  unused ('')
    ARGV[9]  a dp plan: its epsilon spent after this round, '' for a plan without dp; stored with the
             plan (with the rounds charged, this round's number, and the next clip) in this same step, so
             that the privacy record can never fall behind a released state
    ARGV[10] a dp plan: the next round's clip
    ARGV[11] a dp plan with adaptive clipping: the noisy fraction of unclipped clients, '' otherwise

  Output:
    {'partials_moved'}  a worker the caller did not declare committed a partial (nothing changed)
    {changed, phase, plan_completed, population}
      changed 1 if the attempt moved to 'completed', else 0; phase after the call ('' if the attempt
      does not exist); plan_completed 1 if this call marked the plan completed (the caller then drops it
      from its population set, a global key this script may not touch); the plan's population
]]
${ATTEMPT_EXTRAS}
${DROP_ROUND_DATA}
${FORGET_DEVICES}
local phase = redis.call('HGET', KEYS[3], 'phase')
if not phase then return {0, '', 0, ''} end
if phase ~= 'finalizing' then return {0, phase, 0, ''} end
local e = attemptExtras(12)
if not partialsDeclared(e, KEYS[6], ARGV[2]) then return {'partials_moved'} end

redis.call('SET', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[3], 'phase', 'completed', 'aggregated_clients', ARGV[6], 'finished_at', ARGV[7])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[3], 'output', ARGV[5]) end
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[1], 'dp_epsilon', ARGV[9], 'dp_rounds', ARGV[3], 'dp_clip', ARGV[10])
  redis.call('HSET', KEYS[3], 'dp_epsilon', ARGV[9], 'dp_next_clip', ARGV[10])
  if ARGV[11] ~= '' then redis.call('HSET', KEYS[3], 'dp_unclipped', ARGV[11]) end
end
dropRoundData(KEYS[4], KEYS[5], KEYS[6], KEYS[10], KEYS[11], KEYS[9], ARGV[1], e)
forgetDevices(KEYS[3], KEYS[7])

local meta = redis.call('HMGET', KEYS[1], 'rounds', 'status', 'population')
local done = 0
if tonumber(ARGV[3]) >= (tonumber(meta[1]) or math.huge) and (meta[2] == 'active' or meta[2] == 'paused') then
  redis.call('HSET', KEYS[1], 'status', 'completed')
  done = 1
end
return {1, 'completed', done, meta[3] or ''}
`;
