-- Remove an article's dedupe state (a takedown): its documents, which makes
-- every band entry that points at it inert, and its exact entries.
-- Band entries themselves stay until their bucket expires: finding them would
-- need the article's text.
--
-- KEYS, one pair per live time bucket:
--   +1      <prefix>:dd:<bucket>:doc      hash: doc handle -> short sketch .. id
--   +2      <prefix>:dd:<bucket>:<shard>  hash holding the exact field
-- ARGV[1]   the article's doc handle
-- ARGV[2]   its exact field
--
-- Returns how many entries were removed.

local removed = 0
for i = 1, #KEYS, 2 do
  removed = removed + redis.call("HDEL", KEYS[i], ARGV[1])
  if redis.call("HGET", KEYS[i + 1], ARGV[2]) == ARGV[1] then
    removed = removed + redis.call("HDEL", KEYS[i + 1], ARGV[2])
  end
end
return removed
