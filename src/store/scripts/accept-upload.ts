import { CLOSE_REPORTING, EXPIRE_EXCHANGE, FORGET_DEVICES } from './common';

/** Lua: record an upload (see the header). */
export const ACCEPT_UPLOAD = `
--[[
  Records a task's upload: checks the phase, the task and the queue depth, stores the bytes for the
  workers, marks the task uploaded with the upload's digest (single use), and closes the attempt when
  reported reaches target (deleting its round key and device set, see forgetDevices).

  The digest is HMAC-SHA256(round key, upload bytes), never a plain hash: a plain hash of a small upload
  can be brute-forced back to the value, and the round key is deleted when the attempt leaves reporting.
  An empty digest means the caller found no round key: the attempt no longer accepts uploads.

  A task that already uploaded answers DUPLICATE (same digest) or TOKEN_REUSED (another digest) while the
  attempt accepts uploads. Once its round key is gone (closed, finalizing) the digests cannot be compared,
  and such a task answers DUPLICATE: its one upload was accepted and counted, which is what a client that
  retries after a 503 (a replica that had not confirmed the upload yet) must learn; nothing is stored.

  An attempt running SecAgg takes masked uploads only in 'reporting' (R2, after the key exchange) and only
  from cohort members that sent their shares (U2); each accepted one joins U3, the survivors the finalizer
  unmasks. Closing it sets its unmasking deadline (closeReporting).

  Input:
    KEYS[1]  round attempt hash
    KEYS[2]  round attempt tasks hash
    KEYS[3]  the task's upload key
    KEYS[4]  round attempt devices set
    KEYS[5]  SecAgg index hash
    KEYS[6]  SecAgg shared set (U2)
    KEYS[7]  SecAgg uploaded set (U3)
    KEYS[8]  the upload's staged bytes (SET in the same MULTI): renamed to KEYS[3] when accepted, else
             deleted, so that nothing of a refused upload stays

    ARGV[1]  task id
    ARGV[2]  HMAC-SHA256(round key, upload) as base64url, or '' when the round key is gone
    ARGV[3]  unused ('': the bytes are staged in KEYS[8])
    ARGV[4]  now (ms)
    ARGV[5]  max pending: uploads of the attempt that may wait for aggregation

  Output:
    {'ok', closed}        accepted; closed is 1 if this upload closed the attempt, else 0
    {'UPLOAD_DUPLICATE'}  the task already uploaded these bytes (or, once the round key is gone, any)
    {'TOKEN_REUSED'}      the task already uploaded other bytes
    {'UPLOAD_LATE'}       the attempt is past reporting (counted in 'late' unless the task had uploaded)
    {'TASK_UNKNOWN'}      no such attempt, or the task is not assigned in it
    {'BUSY'}              reported - accumulated - held_total >= max pending (nothing changed)
    {'SECAGG_TOO_EARLY'}  SecAgg: the key exchange is not over (selecting or sharing)
    {'SECAGG_NOT_IN_COHORT'}  SecAgg: the task sent no shares in time, so no mask of it can be removed
]]
${FORGET_DEVICES}
${CLOSE_REPORTING}
${EXPIRE_EXCHANGE}
local function refuse(code)
  redis.call('DEL', KEYS[8])
  return {code}
end
local r = redis.call('HMGET', KEYS[1], 'phase', 'reported', 'accumulated', 'target', 'held_total', 'secagg')
local phase = r[1]
if not phase then return refuse('TASK_UNKNOWN') end
local secure = r[6] ~= false
if secure and (phase == 'selecting' or phase == 'sharing') then return refuse('SECAGG_TOO_EARLY') end
local open = (phase == 'selecting' or phase == 'reporting') and ARGV[2] ~= ''

local prev = redis.call('HGET', KEYS[2], ARGV[1])
if prev and string.sub(prev, 1, 2) == 'u:' then
  if not open or prev == 'u:' .. ARGV[2] then return refuse('UPLOAD_DUPLICATE') end
  return refuse('TOKEN_REUSED')
end

if not open then
  redis.call('HINCRBY', KEYS[1], 'late', 1)
  return refuse('UPLOAD_LATE')
end
if not prev then return refuse('TASK_UNKNOWN') end
local index
if secure then
  index = redis.call('HGET', KEYS[5], ARGV[1])
  if not index or redis.call('SISMEMBER', KEYS[6], index) == 0 then return refuse('SECAGG_NOT_IN_COHORT') end
end
-- Uploads that workers hold folded below the minimum (set-held) do not wait for aggregation.
if tonumber(r[2]) - tonumber(r[3]) - (tonumber(r[5]) or 0) >= tonumber(ARGV[5]) then return refuse('BUSY') end

redis.call('RENAME', KEYS[8], KEYS[3])
redis.call('PERSIST', KEYS[3])
redis.call('HSET', KEYS[2], ARGV[1], 'u:' .. ARGV[2])
if secure then
  redis.call('SADD', KEYS[7], index)
  expireExchange(KEYS[1], {KEYS[7]})
end
local reported = redis.call('HINCRBY', KEYS[1], 'reported', 1)
if reported >= tonumber(r[4]) then
  closeReporting(KEYS[1], KEYS[4], ARGV[4])
  return {'ok', 1}
end
return {'ok', 0}
`;
