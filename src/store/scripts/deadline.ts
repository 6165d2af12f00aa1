import {
  ATTEMPT_EXTRAS,
  CLOSE_REPORTING,
  DROP_ROUND_DATA,
  FAIL_ATTEMPT,
  FORGET_DEVICES,
  FORGET_OLD_FAILURE,
  TO_SHARING,
} from './common';

/** Lua: a deadline of a round attempt has come; decide and act in one step (see the header). */
export const DEADLINE = `
--[[
  A selection timeout or reporting deadline of attempt n.a has come (its delayed job, or the reconciler).
  Everything it decides on is read here, in the step that acts on it, so that an upload or an assignment
  landing just before cannot be overruled by a decision taken on an older read:

    selection, in 'selecting':  assigned >= min_reports -> 'reporting', else -> 'failed'
    reporting, in 'selecting' or 'reporting':  reported >= min_reports -> 'closed', else -> 'failed'
    anything else (a 'closed' attempt included): nothing changes

  An attempt running SecAgg counts, at each stage, the clients still in the protocol against the larger of
  min_reports and min_aggregate (fewer would abort later anyway, after more of the clients' work):

    selection, in 'selecting':  advertised >= that -> 'sharing' (its sharing deadline set), else -> 'failed'
    sharing, in 'sharing':  shared >= that -> 'reporting', else -> 'failed'
    reporting, in 'selecting', 'sharing' or 'reporting':  reported >= that -> 'closed' (with its
      unmasking deadline), else -> 'failed'

  The deadline compared is the one stored in the attempt (selection_deadline, sharing_deadline,
  reporting_deadline; a resume
  moves them later): before it, nothing changes and the answer names it, so a job scheduled for a deadline
  that has moved since does nothing. An attempt that stores none is taken as due. Nothing changes either
  when n.a is not the plan's current attempt, the plan is not active or paused, or it is paused while the
  attempt is open (a paused plan's clock stands still). Failing discards the attempt's tasks, covered set,
  partials, uploads, broadcast, round key and devices, as fail-round does (failAttempt).

  Input:
    KEYS[1]  plan meta hash
    KEYS[2]  round attempt hash
    KEYS[3]  round attempt tasks hash
    KEYS[4]  round attempt covered set
    KEYS[5]  round attempt partials set
    KEYS[6]  round attempt devices set
    KEYS[7]  round attempt broadcast
    KEYS[8]  plan list of kept broadcasts
    KEYS[9]  plan sweep set
    KEYS[10] round attempt garbage tasks hash
    KEYS[11] round attempt garbage partials set
    KEYS[12] plan history list
    KEYS[13..]  the attempt's SecAgg keys, the hash of attempt n.(a - keep) and the declared partials
             (attemptExtras(13))

    ARGV[1]  round n
    ARGV[2]  attempt a
    ARGV[3]  kind: 'selection', 'sharing' or 'reporting'
    ARGV[4]  now (unix ms)
    ARGV[5]  tag 'n.a'
    ARGV[6]  the attempt's partial key prefix (a worker's partial is ARGV[6] .. worker)
    ARGV[7]  failed attempts of a round to keep (RETAIN_FAILED_ATTEMPTS, >= 1)

  Output:
    {'partials_moved'}      a worker the caller did not declare committed a partial (nothing changed)
    {'stale'}               not the current attempt, no such attempt, or the plan is not active or paused
    {'paused'}              the plan is paused and the attempt open
    {'not_yet', deadline}   the stored deadline is after now
    {'sharing', advertised, sharing_deadline}  SecAgg: moved to 'sharing'
    {'reporting', count}    moved to 'reporting' (count: assigned, or SecAgg: shared)
    {'closed', reported}    moved to 'closed'
    {'failed', error}       moved to 'failed' with error
    {'none', phase}         nothing to decide in this phase
]]
${ATTEMPT_EXTRAS}
${DROP_ROUND_DATA}
${FORGET_DEVICES}
${FORGET_OLD_FAILURE}
${FAIL_ATTEMPT}
${TO_SHARING}
${CLOSE_REPORTING}
local failKeys = {round = KEYS[2], tasks = KEYS[3], covered = KEYS[4], partials = KEYS[5], devices = KEYS[6],
  broadcast = KEYS[7], broadcasts = KEYS[8], sweep = KEYS[9], garbageTasks = KEYS[10],
  garbagePartials = KEYS[11], history = KEYS[12]}
local meta = redis.call('HMGET', KEYS[1], 'status', 'round', 'attempt')
if meta[2] ~= ARGV[1] or meta[3] ~= ARGV[2] then return {'stale'} end
if meta[1] ~= 'active' and meta[1] ~= 'paused' then return {'stale'} end

local r = redis.call('HMGET', KEYS[2], 'phase', 'assigned', 'reported', 'min_reports',
  'selection_deadline', 'reporting_deadline', 'secagg', 'advertised', 'shared', 'sharing_deadline',
  'sharing_timeout_ms', 'min_aggregate')
local phase = r[1]
if not phase then return {'stale'} end
local secure = r[7] ~= false
local kind = ARGV[3]
local decides = (kind == 'selection' and phase == 'selecting')
  or (kind == 'sharing' and phase == 'sharing')
  or (kind == 'reporting' and (phase == 'selecting' or phase == 'sharing' or phase == 'reporting'))
if not decides then return {'none', phase} end
if meta[1] == 'paused' then return {'paused'} end
-- Checked before anything is written: the decision below may fail the attempt and drop its partials.
local e = attemptExtras(13)
if not partialsDeclared(e, KEYS[5], ARGV[6]) then return {'partials_moved'} end

local now = tonumber(ARGV[4])
local stored = {selection = r[5], sharing = r[10], reporting = r[6]}
local due = tonumber(stored[kind]) or 0
if now < due then return {'not_yet', tostring(due)} end

local min = tonumber(r[4])
local what = 'min_reports'
if secure and tonumber(r[12]) > min then
  min = tonumber(r[12])
  what = 'min_clients_in_aggregate'
end
local reason
if kind == 'selection' then
  if secure then
    local advertised = tonumber(r[8])
    if advertised >= min then
      toSharing(KEYS[2], ARGV[4], r[11])
      return {'sharing', advertised, redis.call('HGET', KEYS[2], 'sharing_deadline')}
    end
    reason = 'selection timeout with ' .. advertised .. ' clients that advertised SecAgg keys, fewer than ' ..
      what .. ' (' .. min .. ')'
  else
    local assigned = tonumber(r[2])
    if assigned >= min then
      redis.call('HSET', KEYS[2], 'phase', 'reporting', 'reporting_at', ARGV[4])
      return {'reporting', assigned}
    end
    reason = 'selection timeout with ' .. assigned .. ' clients assigned, fewer than min_reports (' .. min .. ')'
  end
elseif kind == 'sharing' then
  local shared = tonumber(r[9])
  if shared >= min then
    redis.call('HSET', KEYS[2], 'phase', 'reporting', 'reporting_at', ARGV[4])
    return {'reporting', shared}
  end
  reason = 'sharing deadline with ' .. shared .. ' clients that sent their SecAgg key shares, fewer than ' ..
    what .. ' (' .. min .. ')'
else
  local reported = tonumber(r[3])
  if reported >= min then
    closeReporting(KEYS[2], KEYS[6], ARGV[4])
    return {'closed', reported}
  end
  reason = 'reporting deadline with ' .. reported .. ' reports, fewer than ' .. what .. ' (' .. min .. ')'
end
failAttempt(failKeys, ARGV[5], reason, ARGV[4], ARGV[1], ARGV[2], ARGV[7], e)
return {'failed', reason}
`;
