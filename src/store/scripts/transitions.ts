import { CLOSE_REPORTING, FORGET_DEVICES } from './common';

/**
 * Lua: the round transitions decided by deadlines and by the finalizer. Each checks the current phase, so
 * a job for an attempt that moved on changes nothing; completed and failed attempts never change again.
 */

/** selecting -> reporting (the selection-timeout path; reaching selection_target is done in try-assign). */
export const TO_REPORTING = `
--[[
  Input:
    KEYS[1]  round attempt hash
    ARGV[1]  now (ms)
  Output:
    {changed, phase}  changed 1 if the attempt moved to 'reporting', else 0; phase after the call,
                      '' if the attempt does not exist
]]
local phase = redis.call('HGET', KEYS[1], 'phase')
if not phase then return {0, ''} end
if phase ~= 'selecting' then return {0, phase} end
redis.call('HSET', KEYS[1], 'phase', 'reporting', 'reporting_at', ARGV[1])
return {1, 'reporting'}
`;

/** selecting | reporting -> closed: stops accepting uploads and forgets the attempt's devices. */
export const CLOSE_ROUND = `
--[[
  Input:
    KEYS[1]  round attempt hash
    KEYS[2]  round attempt devices set (deleted with the round key, see forgetDevices)
    ARGV[1]  now (ms)
  Output:
    {changed, phase}  changed 1 if the attempt moved to 'closed', else 0; phase after the call,
                      '' if the attempt does not exist
]]
${FORGET_DEVICES}
${CLOSE_REPORTING}
local phase = redis.call('HGET', KEYS[1], 'phase')
if not phase then return {0, ''} end
if phase ~= 'selecting' and phase ~= 'reporting' then return {0, phase} end
closeReporting(KEYS[1], KEYS[2], ARGV[1])
return {1, 'closed'}
`;

/**
 * closed -> finalizing, only once every reported upload is accumulated and, for an attempt running SecAgg,
 * every survivor has answered the unmasking request or its deadline has passed.
 */
export const BEGIN_FINALIZE = `
--[[
  Input:
    KEYS[1]  round attempt hash
    ARGV[1]  now (unix ms)
  Output:
    {changed, phase}  changed 1 if the attempt moved to 'finalizing', else 0 (not closed, uploads still
                      waiting for aggregation, or unmasking answers still awaited); phase after the call,
                      '' if the attempt does not exist
]]
local r = redis.call('HMGET', KEYS[1], 'phase', 'accumulated', 'reported', 'secagg', 'unmasked',
  'unmasking_deadline')
local phase = r[1]
if not phase then return {0, ''} end
if phase ~= 'closed' or tonumber(r[2]) ~= tonumber(r[3]) then return {0, phase} end
if r[4] and tonumber(r[5]) < tonumber(r[3]) and tonumber(ARGV[1]) < (tonumber(r[6]) or 0) then
  return {0, phase}
end
redis.call('HSET', KEYS[1], 'phase', 'finalizing')
return {1, 'finalizing'}
`;
