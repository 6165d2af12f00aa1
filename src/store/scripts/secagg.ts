import { EXPIRE_EXCHANGE, TO_SHARING } from './common';

/**
 * Lua: the steps of an attempt's SecAgg+ exchange (docs/server.md, "Secure aggregation"). Each checks the
 * attempt's phase and the task's place in the cohort inside the step that records, so that the sets the
 * finalizer unmasks by (U2 shared, U3 uploaded, U4 answered) only ever hold clients that did the step in time.
 */

/** R0: a task's two public keys; the cohort's last advertisement ends selection. */
export const ADVERTISE = `
--[[
  Input:
    KEYS[1]  round attempt hash
    KEYS[2]  round attempt tasks hash
    KEYS[3]  SecAgg index hash (task -> cohort index)
    KEYS[4]  SecAgg keys list (position i: the public keys of index i)
    ARGV[1]  task id
    ARGV[2]  the public keys, 'c.s' in base64url
    ARGV[3]  now (unix ms)
  Output:
    {'ok', index, ended}      advertised (again, with the same keys: the same index); ended 1 when this
                              advertisement reached selection_target and moved the attempt to 'sharing'
    {'TASK_UNKNOWN'}          no such attempt, or the task is not assigned in it
    {'SECAGG_OFF'}            the attempt does not run SecAgg
    {'SECAGG_KEYS_CHANGED'}   the task advertised other keys before
    {'SECAGG_PHASE', phase}   selection is over: the cohort is fixed
]]
${TO_SHARING}
${EXPIRE_EXCHANGE}
local r = redis.call('HMGET', KEYS[1], 'phase', 'secagg', 'selection_target', 'sharing_timeout_ms')
if not r[1] or redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return {'TASK_UNKNOWN'} end
if not r[2] then return {'SECAGG_OFF'} end
local index = redis.call('HGET', KEYS[3], ARGV[1])
if index then
  if redis.call('LINDEX', KEYS[4], index) == ARGV[2] then return {'ok', index, 0} end
  return {'SECAGG_KEYS_CHANGED'}
end
if r[1] ~= 'selecting' then return {'SECAGG_PHASE', r[1]} end
local n = redis.call('RPUSH', KEYS[4], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], n - 1)
expireExchange(KEYS[1], {KEYS[3], KEYS[4]})
redis.call('HSET', KEYS[1], 'advertised', n)
if n >= tonumber(r[3]) then
  toSharing(KEYS[1], ARGV[3], r[4])
  return {'ok', n - 1, 1}
end
return {'ok', n - 1, 0}
`;

/** R1: a cohort member's encrypted shares, one per member of its neighbourhood (checked by the caller). */
export const SHARE = `
--[[
  Input:
    KEYS[1]  round attempt hash
    KEYS[2]  SecAgg index hash
    KEYS[3]  SecAgg shared set (U2)
    KEYS[4]  SecAgg inbox hash ('<to>:<from>' -> ciphertext)
    ARGV[1]  task id
    ARGV[2]  now (unix ms)
    ARGV[3], ARGV[4], ...  pairs: recipient index, ciphertext (base64url)
  Output:
    {'ok', ended}             stored; ended 1 when every cohort member has shared (-> 'reporting')
    {'TASK_UNKNOWN'}          no such attempt
    {'SECAGG_OFF'}            the attempt does not run SecAgg
    {'SECAGG_NOT_IN_COHORT'}  the task did not advertise keys in time
    {'SECAGG_ALREADY_SENT'}   the task's shares are stored already
    {'SECAGG_PHASE', phase}   the attempt is not exchanging shares
]]
${EXPIRE_EXCHANGE}
local r = redis.call('HMGET', KEYS[1], 'phase', 'secagg', 'advertised')
if not r[1] then return {'TASK_UNKNOWN'} end
if not r[2] then return {'SECAGG_OFF'} end
local index = redis.call('HGET', KEYS[2], ARGV[1])
if not index then return {'SECAGG_NOT_IN_COHORT'} end
if redis.call('SISMEMBER', KEYS[3], index) == 1 then return {'SECAGG_ALREADY_SENT'} end
if r[1] ~= 'sharing' then return {'SECAGG_PHASE', r[1]} end
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[4], ARGV[i] .. ':' .. index, ARGV[i + 1])
end
redis.call('SADD', KEYS[3], index)
expireExchange(KEYS[1], {KEYS[3], KEYS[4]})
local shared = redis.call('HINCRBY', KEYS[1], 'shared', 1)
if shared >= tonumber(r[3]) then
  redis.call('HSET', KEYS[1], 'phase', 'reporting', 'reporting_at', ARGV[2])
  return {'ok', 1}
end
return {'ok', 0}
`;

/**
 * R3: a survivor's unmasking shares. The kind of each share is decided here from U3, in the step that stores
 * it: a self-mask share (b) only of a client whose masked upload was accepted, a mask-key share (s) only of a
 * client that shared keys and did not upload. So the server never holds both kinds for one client, whatever
 * a client sends.
 */
export const UNMASK = `
--[[
  Input:
    KEYS[1]  round attempt hash
    KEYS[2]  SecAgg index hash
    KEYS[3]  SecAgg shared set (U2)
    KEYS[4]  SecAgg uploaded set (U3)
    KEYS[5]  SecAgg answered set (U4)
    KEYS[6]  SecAgg unmask hash ('<of>:<by>' -> kind ':' share)
    ARGV[1]  task id
    ARGV[2], ARGV[3], ARGV[4], ...  triples: the index the share is of, its kind ('b' or 's'), the share
  Output:
    {'ok', answered, reported}      stored; answered is the attempt's count of answers (U4)
    {'TASK_UNKNOWN'}                no such attempt
    {'SECAGG_OFF'}                  the attempt does not run SecAgg
    {'SECAGG_NOT_SURVIVOR'}         the task has no accepted masked upload
    {'SECAGG_ALREADY_SENT'}         the task answered already
    {'SECAGG_PHASE', phase}         the attempt is not unmasking (only while 'closed')
    {'SECAGG_WRONG_SHARE', of}      a share of a client outside U2, or of the wrong kind for it
]]
${EXPIRE_EXCHANGE}
local r = redis.call('HMGET', KEYS[1], 'phase', 'secagg', 'reported')
if not r[1] then return {'TASK_UNKNOWN'} end
if not r[2] then return {'SECAGG_OFF'} end
local index = redis.call('HGET', KEYS[2], ARGV[1])
if not index or redis.call('SISMEMBER', KEYS[4], index) == 0 then return {'SECAGG_NOT_SURVIVOR'} end
if redis.call('SISMEMBER', KEYS[5], index) == 1 then return {'SECAGG_ALREADY_SENT'} end
if r[1] ~= 'closed' then return {'SECAGG_PHASE', r[1]} end
for i = 2, #ARGV, 3 do
  local of = ARGV[i]
  if redis.call('SISMEMBER', KEYS[3], of) == 0 then return {'SECAGG_WRONG_SHARE', of} end
  local survivor = redis.call('SISMEMBER', KEYS[4], of) == 1
  if (ARGV[i + 1] == 'b') ~= survivor or (ARGV[i + 1] ~= 'b' and ARGV[i + 1] ~= 's') then
    return {'SECAGG_WRONG_SHARE', of}
  end
end
for i = 2, #ARGV, 3 do
  redis.call('HSET', KEYS[6], ARGV[i] .. ':' .. index, ARGV[i + 1] .. ':' .. ARGV[i + 2])
end
redis.call('SADD', KEYS[5], index)
expireExchange(KEYS[1], {KEYS[5], KEYS[6]})
local answered = redis.call('HINCRBY', KEYS[1], 'unmasked', 1)
return {'ok', answered, r[3]}
`;
