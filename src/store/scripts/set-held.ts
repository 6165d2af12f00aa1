/** Lua: record how many uploads a worker holds folded but uncommitted (see the header). */
export const SET_HELD = `
--[[
  Records how many of an attempt's uploads a worker holds folded in memory without having committed them
  (its partial covers fewer than min_clients_in_aggregate devices), and keeps the attempt's total in
  'held_total', which accept-upload subtracts from the uploads waiting for aggregation, so that uploads
  waiting for the minimum never block the uploads that would reach it. commit-partial clears the worker's
  count. Only while the attempt is open.

  Input:
    KEYS[1]  round attempt hash
    ARGV[1]  worker id
    ARGV[2]  count (0 clears)

  Output:
    1 recorded, 0 the attempt is not open (nothing changed)
]]
local phase = redis.call('HGET', KEYS[1], 'phase')
if phase ~= 'selecting' and phase ~= 'reporting' and phase ~= 'closed' then return 0 end
local old = tonumber(redis.call('HGET', KEYS[1], 'held:' .. ARGV[1])) or 0
redis.call('HINCRBY', KEYS[1], 'held_total', tonumber(ARGV[2]) - old)
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], 'held:' .. ARGV[1], ARGV[2])
else
  redis.call('HDEL', KEYS[1], 'held:' .. ARGV[1])
end
return 1
`;
