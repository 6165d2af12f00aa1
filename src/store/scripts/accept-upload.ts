import { FORGET_DEVICES } from './common';

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
  attempt accepts uploads; once its round key is gone such a task's upload is late but not counted in
  'late', since its one upload was already counted.

  Input:
    KEYS[1]  round attempt hash
    KEYS[2]  round attempt tasks hash
    KEYS[3]  the task's upload key
    KEYS[4]  round attempt devices set

    ARGV[1]  task id
    ARGV[2]  HMAC-SHA256(round key, upload) as base64url, or '' when the round key is gone
    ARGV[3]  upload bytes
    ARGV[4]  now (ms)
    ARGV[5]  max pending: uploads of the attempt that may wait for aggregation

  Output:
    {'ok', closed}        accepted; closed is 1 if this upload closed the attempt, else 0
    {'UPLOAD_DUPLICATE'}  the task already uploaded these bytes
    {'TOKEN_REUSED'}      the task already uploaded other bytes
    {'UPLOAD_LATE'}       the attempt is past reporting (counted in 'late' unless the task had uploaded)
    {'TASK_UNKNOWN'}      no such attempt, or the task is not assigned in it
    {'BUSY'}              reported - accumulated - held_total >= max pending (nothing changed)
]]
${FORGET_DEVICES}
local r = redis.call('HMGET', KEYS[1], 'phase', 'reported', 'accumulated', 'target', 'held_total')
local phase = r[1]
if not phase then return {'TASK_UNKNOWN'} end
local open = (phase == 'selecting' or phase == 'reporting') and ARGV[2] ~= ''

local prev = redis.call('HGET', KEYS[2], ARGV[1])
if prev and string.sub(prev, 1, 2) == 'u:' then
  if not open then return {'UPLOAD_LATE'} end
  if prev == 'u:' .. ARGV[2] then return {'UPLOAD_DUPLICATE'} end
  return {'TOKEN_REUSED'}
end

if not open then
  redis.call('HINCRBY', KEYS[1], 'late', 1)
  return {'UPLOAD_LATE'}
end
if not prev then return {'TASK_UNKNOWN'} end
-- Uploads that workers hold folded below the minimum (set-held) do not wait for aggregation.
if tonumber(r[2]) - tonumber(r[3]) - (tonumber(r[5]) or 0) >= tonumber(ARGV[5]) then return {'BUSY'} end

redis.call('SET', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], 'u:' .. ARGV[2])
local reported = redis.call('HINCRBY', KEYS[1], 'reported', 1)
if reported >= tonumber(r[4]) then
  redis.call('HSET', KEYS[1], 'phase', 'closed', 'closed_at', ARGV[4])
  forgetDevices(KEYS[1], KEYS[4])
  return {'ok', 1}
end
return {'ok', 0}
`;
