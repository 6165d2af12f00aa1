import { CHUNKED } from './common';

/** Lua: commit a worker's partial together with the tasks it covers (see the header). */
export const COMMIT_PARTIAL = `
--[[
  The exactly-once step of aggregation (docs/server.md, "Aggregation, exactly once"). Atomically: refuses
  the batch if any of its tasks is already covered or has no accepted upload; else stores the worker's
  partial, marks the tasks covered, records the worker, deletes the uploads, adds to 'accumulated' and
  adds the uploads of the batch the worker rejected to 'rejected' (in the same step, so that a worker
  failing after the commit cannot lose or double that count); the worker's held count (set-held) is
  cleared, since what it held is now committed. The covered uploads inside no partial (rejected or gone)
  are added to 'dropped', so that finalize can check accumulated == clients of the partials + dropped.
  Fencing: 'epoch:<worker>' keeps the highest lease epoch the worker id committed with in this attempt; a
  commit with a lower one comes from a process that lost the id's lease (a zombie) and is refused.

  Input:
    KEYS[1]      round attempt hash
    KEYS[2]      round attempt tasks hash
    KEYS[3]      round attempt covered set
    KEYS[4]      round attempt partials set
    KEYS[5]      this worker's partial
    KEYS[5 + i]  the upload key of task i (i = 1 .. #ARGV - 5)

    ARGV[1]      worker id
    ARGV[2]      partial bytes
    ARGV[3]      how many of the tasks the worker rejected (their uploads are not in the partial)
    ARGV[4]      how many of the tasks had no upload left (gone; not in the partial either)
    ARGV[5]      the worker's lease epoch (0: a caller without a lease)
    ARGV[5 + i]  task i (distinct)

  Output:
    {'ok', ready}          committed; ready is 1 if the attempt is closed and accumulated == reported
    {'conflict', task...}  these tasks are covered already or were never accepted (nothing changed)
    {'stale', phase}       the attempt no longer takes partials: finalizing, completed, failed, or
                           missing (phase '') (nothing changed)
    {'fenced', epoch}      the worker id committed with a higher epoch (nothing changed)
]]
${CHUNKED}
local phase = redis.call('HGET', KEYS[1], 'phase')
if phase ~= 'selecting' and phase ~= 'reporting' and phase ~= 'closed' then
  return {'stale', phase or ''}
end

local epoch = tonumber(ARGV[5])
local fence = tonumber(redis.call('HGET', KEYS[1], 'epoch:' .. ARGV[1])) or 0
if epoch < fence then return {'fenced', fence} end

local tasks = {}
local conflicts = {'conflict'}
for i = 6, #ARGV do
  local task = ARGV[i]
  tasks[#tasks + 1] = task
  local mark = redis.call('HGET', KEYS[2], task)
  if redis.call('SISMEMBER', KEYS[3], task) == 1 or not mark or string.sub(mark, 1, 2) ~= 'u:' then
    conflicts[#conflicts + 1] = task
  end
end
if #conflicts > 1 then return conflicts end

redis.call('SET', KEYS[5], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[1])
if epoch > fence then redis.call('HSET', KEYS[1], 'epoch:' .. ARGV[1], epoch) end
local held = tonumber(redis.call('HGET', KEYS[1], 'held:' .. ARGV[1])) or 0
if held > 0 then
  redis.call('HINCRBY', KEYS[1], 'held_total', -held)
  redis.call('HDEL', KEYS[1], 'held:' .. ARGV[1])
end
if #tasks > 0 then
  saddAll(KEYS[3], tasks)
  local uploads = {}
  for i = 6, #KEYS do uploads[#uploads + 1] = KEYS[i] end
  delAll(uploads)
end
local rejected = tonumber(ARGV[3])
if rejected > 0 then redis.call('HINCRBY', KEYS[1], 'rejected', rejected) end
local dropped = rejected + tonumber(ARGV[4])
if dropped > 0 then redis.call('HINCRBY', KEYS[1], 'dropped', dropped) end
local accumulated = redis.call('HINCRBY', KEYS[1], 'accumulated', #tasks)
local reported = tonumber(redis.call('HGET', KEYS[1], 'reported'))
if phase == 'closed' and accumulated == reported then return {'ok', 1} end
return {'ok', 0}
`;
