/**
 * Lua helpers prepended to the scripts that need them. `unpack` of a long table overflows Lua's C stack
 * (about 8000 values), so variadic commands over sets of unbounded size go in chunks.
 */

/** `delAll(keys)`, `saddAll(key, members)`, `hdelAll(key, fields)`: the command over a whole Lua list. */
export const CHUNKED = `
local function chunked(cmd, first, list)
  for i = 1, #list, 500 do
    if first then
      redis.call(cmd, first, unpack(list, i, math.min(i + 499, #list)))
    else
      redis.call(cmd, unpack(list, i, math.min(i + 499, #list)))
    end
  end
end
local function delAll(keys) chunked('DEL', nil, keys) end
local function saddAll(key, members) chunked('SADD', key, members) end
local function hdelAll(key, fields) chunked('HDEL', key, fields) end
`;

/**
 * `dropRoundData(tasksKey, coveredKey, partialsKey, uploadPrefix, partialPrefix)`: deletes a round
 * attempt's tasks hash, covered set, partials set, every worker's partial and every queued upload. Shared by
 * complete and fail so that both leave exactly the same keys behind (the round hash and the broadcast).
 */
export const DROP_ROUND_DATA = `
local function dropRoundData(tasksKey, coveredKey, partialsKey, uploadPrefix, partialPrefix)
  local doomed = {tasksKey, coveredKey, partialsKey}
  local tasks = redis.call('HGETALL', tasksKey)
  for i = 1, #tasks, 2 do
    if string.sub(tasks[i + 1], 1, 2) == 'u:' then doomed[#doomed + 1] = uploadPrefix .. tasks[i] end
  end
  for _, worker in ipairs(redis.call('SMEMBERS', partialsKey)) do
    doomed[#doomed + 1] = partialPrefix .. worker
  end
  delAll(doomed)
end
`;

/**
 * `forgetDevices(roundKey, devicesKey)`: deletes the attempt's round key (the `round_key` field) and its set
 * of device HMACs, once the attempt leaves reporting (closed, failed, completed). Without the key no HMAC of
 * a device or an upload can be recomputed, so nothing left of the attempt links to a device.
 */
export const FORGET_DEVICES = `
local function forgetDevices(roundKey, devicesKey)
  redis.call('HDEL', roundKey, 'round_key')
  redis.call('DEL', devicesKey)
end
`;
