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

/** Partials of one attempt that complete and fail delete inside their script; past this, the sweep does. */
export const PARTIALS_IN_SCRIPT = 64;

/**
 * `attemptExtras(first)` and `partialsDeclared(e, partialsKey, partialPrefix)`: the keys a script that may
 * discard an attempt's data takes after its fixed KEYS, so that it touches no key it did not declare (Redis
 * Cluster routes a script by its KEYS; docs/server.md, "Redis Cluster"):
 *
 *   KEYS[first .. first + 6]  the attempt's SecAgg exchange keys (SECAGG_SUFFIXES order)
 *   KEYS[first + 7]           the hash of attempt n.(a - keep) of the round (forgetOldFailure)
 *   KEYS[first + 8 ..]        the partial key of every worker the caller read in the attempt's partials set
 *
 * The caller reads the partials set before the script; a worker may commit its first partial in between.
 * partialsDeclared tells, before the script writes anything, whether every worker the set names now has
 * its key among the declared ones; if not, the script answers {'partials_moved'} and the caller reads the
 * set again (the store's runDropping). Past PARTIALS_IN_SCRIPT workers the set is moved aside whole, and
 * the sweep deletes the partials outside Lua.
 */
export const ATTEMPT_EXTRAS = `
local function attemptExtras(first)
  local e = {secagg = {}, partials = {}, declared = {}, oldFailure = KEYS[first + 7]}
  for i = first, first + 6 do e.secagg[#e.secagg + 1] = KEYS[i] end
  for i = first + 8, #KEYS do
    e.partials[#e.partials + 1] = KEYS[i]
    e.declared[KEYS[i]] = true
  end
  return e
end
local function partialsDeclared(e, partialsKey, partialPrefix)
  if redis.call('SCARD', partialsKey) > ${PARTIALS_IN_SCRIPT} then return true end
  for _, worker in ipairs(redis.call('SMEMBERS', partialsKey)) do
    if not e.declared[partialPrefix .. worker] then return false end
  end
  return true
end
`;

/**
 * `dropRoundData(tasksKey, coveredKey, partialsKey, garbageTasks, garbagePartials, sweepKey, tag, e)`:
 * takes a finished attempt's data out of the live key space without reading it whole. The workers'
 * partials (one per worker that committed, so few; `e` from attemptExtras, checked by partialsDeclared)
 * are deleted here, in the same atomic step, so that no partial of a finished attempt, which may cover
 * fewer clients than the minimum, outlives it; past PARTIALS_IN_SCRIPT workers the partials set is moved
 * aside like the tasks. The tasks hash (one field per assigned task) is RENAMEd to the attempt's garbage
 * key and the attempt's tag added to the plan's sweep set; the sweep (src/store/sweep.ts) deletes it and
 * the queued uploads it names in bounded steps, outside Lua. The covered set is UNLINKed (freed off the main
 * thread when large). Shared by complete and fail so that both leave the same keys behind.
 */
export const DROP_ROUND_DATA = `
local function dropRoundData(tasksKey, coveredKey, partialsKey, garbageTasks, garbagePartials, sweepKey, tag, e)
  local moved = false
  if redis.call('EXISTS', tasksKey) == 1 then
    redis.call('RENAME', tasksKey, garbageTasks)
    moved = true
  end
  local workers = redis.call('SCARD', partialsKey)
  if workers > ${PARTIALS_IN_SCRIPT} then
    redis.call('RENAME', partialsKey, garbagePartials)
    moved = true
  elseif workers > 0 then
    -- Every partial of the set is among the declared ones (partialsDeclared); one declared but never
    -- committed has no key, and UNLINK passes over it.
    redis.call('UNLINK', partialsKey, unpack(e.partials))
  end
  if moved then redis.call('SADD', sweepKey, tag) end
  redis.call('UNLINK', coveredKey)
  -- The SecAgg exchange (public keys, ciphertexts, unmasking shares) of the attempt, if it ran one.
  redis.call('UNLINK', unpack(e.secagg))
end
`;

/**
 * `forgetOldFailure(historyKey, oldKey, n, a, keep)`: once attempt a of round n has failed, deletes the
 * hash of attempt a - keep (`oldKey`, declared by the caller; keep >= 1, RETAIN_FAILED_ATTEMPTS) when it
 * failed too, with its history entry, so that a round keeps at most `keep` failed attempts. The attempt that
 * just failed always stays: the engine reads it to open the next one. Attempts of a round open one after
 * another, so the entry is a few places from the history's tail, where LREM with a negative count starts
 * and stops.
 */
export const FORGET_OLD_FAILURE = `
local function forgetOldFailure(historyKey, oldKey, n, a, keep)
  local old = tonumber(a) - tonumber(keep)
  if old < 1 then return end
  if redis.call('HGET', oldKey, 'phase') == 'failed' then
    redis.call('UNLINK', oldKey)
    redis.call('LREM', historyKey, -1, n .. '.' .. old)
  end
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
  -- UNLINK: the set holds one member per assigned device; a large one is freed off the main thread.
  redis.call('UNLINK', devicesKey)
end
`;

/**
 * `failAttempt(k, tag, error, now, n, a, keep, e)`: marks an open attempt failed and discards everything of
 * it but its hash, as fail-round, a deadline and a cancel all do: its data (dropRoundData), round key and
 * devices, its broadcast and that broadcast's entry in the plan's list (the failed attempt is the current
 * one, so the entry is the list's last: LREM from the tail), and the round's oldest failure beyond `keep`.
 * `k` names the keys: round, tasks, covered, partials, devices, broadcast, broadcasts, sweep,
 * garbageTasks, garbagePartials, history; `e` is attemptExtras. Needs DROP_ROUND_DATA, FORGET_DEVICES and
 * FORGET_OLD_FAILURE before it.
 */
export const FAIL_ATTEMPT = `
local function failAttempt(k, tag, error, now, n, a, keep, e)
  redis.call('HSET', k.round, 'phase', 'failed', 'error', error, 'finished_at', now)
  dropRoundData(k.tasks, k.covered, k.partials, k.garbageTasks, k.garbagePartials, k.sweep, tag, e)
  forgetDevices(k.round, k.devices)
  redis.call('UNLINK', k.broadcast)
  redis.call('LREM', k.broadcasts, -1, tag)
  forgetOldFailure(k.history, e.oldFailure, n, a, keep)
end
`;

/**
 * `toSharing(roundKey, now, timeoutMs)`: ends an attempt's SecAgg selection (its cohort is fixed): phase
 * 'sharing', with the sharing deadline `timeoutMs` from now.
 */
export const TO_SHARING = `
local function toSharing(roundKey, now, timeoutMs)
  redis.call('HSET', roundKey, 'phase', 'sharing', 'sharing_at', now,
    'sharing_deadline', tonumber(now) + tonumber(timeoutMs))
end
`;

/**
 * `closeReporting(roundKey, devicesKey, now)`: reporting -> 'closed' (no more uploads; forgetDevices), and
 * for an attempt running SecAgg the unmasking deadline, its timeout from now.
 */
export const CLOSE_REPORTING = `
local function closeReporting(roundKey, devicesKey, now)
  redis.call('HSET', roundKey, 'phase', 'closed', 'closed_at', now)
  local timeout = redis.call('HGET', roundKey, 'unmasking_timeout_ms')
  if timeout then redis.call('HSET', roundKey, 'unmasking_deadline', tonumber(now) + tonumber(timeout)) end
  forgetDevices(roundKey, devicesKey)
end
`;

/**
 * `expireExchange(roundKey, keys)`: sets the SecAgg exchange keys a step wrote to expire at the attempt's
 * `secagg_expires_at`: complete and fail delete them, and the expiry is the backstop should neither run.
 */
export const EXPIRE_EXCHANGE = `
local function expireExchange(roundKey, keys)
  local at = redis.call('HGET', roundKey, 'secagg_expires_at')
  if not at then return end
  for _, key in ipairs(keys) do redis.call('PEXPIREAT', key, at) end
end
`;
