import { DROP_ROUND_DATA, FAIL_ATTEMPT, FORGET_DEVICES, FORGET_OLD_FAILURE } from './common';

/** Lua: a deadline of a round attempt has come; decide and act in one step (see the header). */
export const DEADLINE = `
--[[
  A selection timeout or reporting deadline of attempt n.a has come (its delayed job, or the reconciler).
  Everything it decides on is read here, in the step that acts on it, so that an upload or an assignment
  landing just before cannot be overruled by a decision taken on an older read:

    selection, in 'selecting':  assigned >= min_reports -> 'reporting', else -> 'failed'
    reporting, in 'selecting' or 'reporting':  reported >= min_reports -> 'closed', else -> 'failed'
    anything else (a 'closed' attempt included): nothing changes

  The deadline compared is the one stored in the attempt (selection_deadline, reporting_deadline; a resume
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

    ARGV[1]  round n
    ARGV[2]  attempt a
    ARGV[3]  kind: 'selection' or 'reporting'
    ARGV[4]  now (unix ms)
    ARGV[5]  tag 'n.a'
    ARGV[6]  round key prefix (an attempt's hash is ARGV[6] .. 'n.a')
    ARGV[7]  failed attempts of a round to keep (RETAIN_FAILED_ATTEMPTS, >= 1)

  Output:
    {'stale'}               not the current attempt, no such attempt, or the plan is not active or paused
    {'paused'}              the plan is paused and the attempt open
    {'not_yet', deadline}   the stored deadline is after now
    {'reporting', assigned} moved to 'reporting'
    {'closed', reported}    moved to 'closed'
    {'failed', error}       moved to 'failed' with error
    {'none', phase}         nothing to decide in this phase
]]
${DROP_ROUND_DATA}
${FORGET_DEVICES}
${FORGET_OLD_FAILURE}
${FAIL_ATTEMPT}
local failKeys = {round = KEYS[2], tasks = KEYS[3], covered = KEYS[4], partials = KEYS[5], devices = KEYS[6],
  broadcast = KEYS[7], broadcasts = KEYS[8], sweep = KEYS[9], garbageTasks = KEYS[10],
  garbagePartials = KEYS[11], history = KEYS[12]}
local meta = redis.call('HMGET', KEYS[1], 'status', 'round', 'attempt')
if meta[2] ~= ARGV[1] or meta[3] ~= ARGV[2] then return {'stale'} end
if meta[1] ~= 'active' and meta[1] ~= 'paused' then return {'stale'} end

local r = redis.call('HMGET', KEYS[2], 'phase', 'assigned', 'reported', 'min_reports',
  'selection_deadline', 'reporting_deadline')
local phase = r[1]
if not phase then return {'stale'} end
local kind = ARGV[3]
local decides = (kind == 'selection' and phase == 'selecting')
  or (kind == 'reporting' and (phase == 'selecting' or phase == 'reporting'))
if not decides then return {'none', phase} end
if meta[1] == 'paused' then return {'paused'} end

local now = tonumber(ARGV[4])
local due = tonumber(kind == 'selection' and r[5] or r[6]) or 0
if now < due then return {'not_yet', tostring(due)} end

local min = tonumber(r[4])
local reason
if kind == 'selection' then
  local assigned = tonumber(r[2])
  if assigned >= min then
    redis.call('HSET', KEYS[2], 'phase', 'reporting', 'reporting_at', ARGV[4])
    return {'reporting', assigned}
  end
  reason = 'selection timeout with ' .. assigned .. ' clients assigned, fewer than min_reports (' .. min .. ')'
else
  local reported = tonumber(r[3])
  if reported >= min then
    redis.call('HSET', KEYS[2], 'phase', 'closed', 'closed_at', ARGV[4])
    forgetDevices(KEYS[2], KEYS[6])
    return {'closed', reported}
  end
  reason = 'reporting deadline with ' .. reported .. ' reports, fewer than min_reports (' .. min .. ')'
end
failAttempt(failKeys, ARGV[5], reason, ARGV[4], ARGV[6], ARGV[1], ARGV[2], ARGV[7])
return {'failed', reason}
`;
