import { FORGET_OLD_FAILURE } from './common';

/** Lua: open a round attempt (see the header). */
export const OPEN_ROUND = `
--[[
  Opens a round attempt in 'selecting' and makes it the plan's current one. Idempotent: an attempt that
  exists is left alone, and the plan's current attempt never moves backwards. With an error (ARGV[12]),
  the attempt is recorded directly as 'failed' (its prepare or secure-sum parameters failed): no broadcast.
  Retention (docs/server.md, "Retention"): the new broadcast joins the plan's list of kept broadcasts (the
  store trims the list after this script: trim-broadcast); an attempt stored failed makes the round forget
  its oldest failure beyond ARGV[15] (see forgetOldFailure).

  Input:
    KEYS[1]  plan meta hash
    KEYS[2]  round attempt hash
    KEYS[3]  round attempt broadcast (string)
    KEYS[4]  plan history list
    KEYS[5]  plan list of kept broadcasts
    KEYS[6]  the hash of attempt n.(a - ARGV[15]) of the round (forgetOldFailure)

    ARGV[1]  round n
    ARGV[2]  attempt a
    ARGV[3]  tag 'n.a' (pushed on the history)
    ARGV[4]  selection_target
    ARGV[5]  target
    ARGV[6]  min_reports
    ARGV[7]  min_aggregate
    ARGV[8]  secure_params (JSON)
    ARGV[9]  now (ms)
    ARGV[10] broadcast bytes
    ARGV[11] round key: a random secret for the device and upload HMACs of this attempt, deleted when the
             attempt leaves reporting (never returned by any API)
    ARGV[12] error: '' to open, else why the attempt could not open (it is stored failed, without a
             round key)
    ARGV[13] unused ('')
    ARGV[14] unused ('')
    ARGV[15] failed attempts of a round to keep (RETAIN_FAILED_ATTEMPTS, >= 1)
    ARGV[16] selection_deadline (unix ms), '' for none
    ARGV[17] reporting_deadline (unix ms), '' for none
    ARGV[18] the attempt's SecAgg setup (JSON: protocol, session, graph seed, masking moduli, graph
             settings), '' when its secure sums are not masked
    ARGV[19] SecAgg: sharing timeout (ms), from the end of selection
    ARGV[20] SecAgg: unmasking timeout (ms), from the close of reporting
    ARGV[21] SecAgg: when the exchange's keys expire (unix ms), should nothing delete them first
    ARGV[22] a dp plan: the clip norm of the attempt's uploads, '' for a plan without dp

  Output:
     1  opened
     0  nothing changed: the attempt exists, the plan is already at a later attempt, or it is not active
        or paused (cancelled, completed or failed while the engine prepared the attempt)
    -1  the plan does not exist
]]
${FORGET_OLD_FAILURE}
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
-- An engine that read the plan active, then spent seconds on prepare, must not open a round of a plan
-- cancelled meanwhile: nothing would ever end it (its deadlines and the reconciler skip cancelled plans).
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'active' and status ~= 'paused' then return 0 end

local n = tonumber(ARGV[1])
local a = tonumber(ARGV[2])
local cur = redis.call('HMGET', KEYS[1], 'round', 'attempt')
local cn = tonumber(cur[1]) or 0
local ca = tonumber(cur[2]) or 0
-- A stale engine (a finalize or deadline job that lost a race) must not drag the plan back.
if n < cn or (n == cn and a < ca) then return 0 end

redis.call('HSET', KEYS[2],
  'phase', 'selecting', 'opened_at', ARGV[9],
  'selection_target', ARGV[4], 'target', ARGV[5], 'min_reports', ARGV[6], 'min_aggregate', ARGV[7],
  'assigned', 0, 'reported', 0, 'rejected', 0, 'late', 0, 'accumulated', 0, 'aggregated_clients', 0,
  'secure_params', ARGV[8])
if ARGV[22] ~= '' then redis.call('HSET', KEYS[2], 'dp_clip', ARGV[22]) end
if ARGV[12] ~= '' then
  redis.call('HSET', KEYS[2], 'phase', 'failed', 'error', ARGV[12], 'finished_at', ARGV[9])
  forgetOldFailure(KEYS[4], KEYS[6], ARGV[1], a, ARGV[15])
else
  redis.call('HSET', KEYS[2], 'round_key', ARGV[11])
  redis.call('SET', KEYS[3], ARGV[10])
  redis.call('RPUSH', KEYS[5], ARGV[3])
  if ARGV[16] ~= '' then redis.call('HSET', KEYS[2], 'selection_deadline', ARGV[16]) end
  if ARGV[17] ~= '' then redis.call('HSET', KEYS[2], 'reporting_deadline', ARGV[17]) end
  if ARGV[18] ~= '' then
    redis.call('HSET', KEYS[2], 'secagg', ARGV[18], 'sharing_timeout_ms', ARGV[19],
      'unmasking_timeout_ms', ARGV[20], 'secagg_expires_at', ARGV[21], 'advertised', 0, 'shared', 0,
      'unmasked', 0)
  end
end
redis.call('RPUSH', KEYS[4], ARGV[3])
redis.call('HSET', KEYS[1], 'round', ARGV[1], 'attempt', ARGV[2])
return 1
`;
