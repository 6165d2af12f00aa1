/** Lua: record an upload (see the header). */
export const ACCEPT_UPLOAD = `
--[[
  Records a task's upload: checks the phase, the task and the queue depth, stores the bytes for the
  workers, marks the task uploaded with the upload's hash (single use), and closes the attempt when
  reported reaches target.

  A task that already uploaded answers DUPLICATE (same hash) or TOKEN_REUSED (another hash) in any phase
  while the tasks hash exists: its one upload was already counted, so it is neither late nor counted again.

  Input:
    KEYS[1]  round attempt hash
    KEYS[2]  round attempt tasks hash
    KEYS[3]  the task's upload key

    ARGV[1]  task id
    ARGV[2]  sha256 hex of the upload
    ARGV[3]  upload bytes
    ARGV[4]  now (ms)
    ARGV[5]  max pending: uploads of the attempt that may wait for aggregation

  Output:
    {'ok', closed}        accepted; closed is 1 if this upload closed the attempt, else 0
    {'UPLOAD_DUPLICATE'}  the task already uploaded these bytes
    {'TOKEN_REUSED'}      the task already uploaded other bytes
    {'UPLOAD_LATE'}       the attempt is past reporting (counted in 'late')
    {'TASK_UNKNOWN'}      no such attempt, or the task is not assigned in it
    {'BUSY'}              reported - accumulated >= max pending (nothing changed)
]]
local r = redis.call('HMGET', KEYS[1], 'phase', 'reported', 'accumulated', 'target')
local phase = r[1]
if not phase then return {'TASK_UNKNOWN'} end

local prev = redis.call('HGET', KEYS[2], ARGV[1])
if prev and string.sub(prev, 1, 2) == 'u:' then
  if prev == 'u:' .. ARGV[2] then return {'UPLOAD_DUPLICATE'} end
  return {'TOKEN_REUSED'}
end

if phase ~= 'selecting' and phase ~= 'reporting' then
  redis.call('HINCRBY', KEYS[1], 'late', 1)
  return {'UPLOAD_LATE'}
end
if not prev then return {'TASK_UNKNOWN'} end
if tonumber(r[2]) - tonumber(r[3]) >= tonumber(ARGV[5]) then return {'BUSY'} end

redis.call('SET', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], 'u:' .. ARGV[2])
local reported = redis.call('HINCRBY', KEYS[1], 'reported', 1)
if reported >= tonumber(r[4]) then
  redis.call('HSET', KEYS[1], 'phase', 'closed', 'closed_at', ARGV[4])
  return {'ok', 1}
end
return {'ok', 0}
`;
