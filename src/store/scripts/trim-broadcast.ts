/** Lua: drop the oldest kept broadcast of a plan when the plan keeps too many (see the header). */
export const TRIM_BROADCAST = `
--[[
  Retention of broadcasts (docs/server.md, "Retention"): when the plan's list of kept broadcasts is longer
  than ARGV[2] and its oldest entry is still ARGV[1], pops that entry and UNLINKs its broadcast. The caller
  read the list first (so that the broadcast's key is declared); an entry that moved in between is left
  for the next trim. Run after each opened or completed round.

  Input:
    KEYS[1]  plan list of kept broadcasts ('n.a' entries, oldest first)
    KEYS[2]  the broadcast of attempt ARGV[1]

    ARGV[1]  tag 'n.a' of the entry to drop
    ARGV[2]  broadcasts to keep (RETAIN_BROADCASTS, >= 1)

  Output:
    1  dropped
    0  nothing changed (the list is short enough, or its oldest entry is another)
]]
if redis.call('LLEN', KEYS[1]) <= tonumber(ARGV[2]) then return 0 end
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[1] then return 0 end
redis.call('LPOP', KEYS[1])
redis.call('UNLINK', KEYS[2])
return 1
`;
