-- Publish one article's outcome: the results stream entry and the per-id record,
-- together, exactly once per (id, text).
--
-- KEYS[1]  <prefix>:result:<id>     hash: hash, rev, status, entry, entries, fp
-- KEYS[2]  <prefix>:results         stream: id, status, result (the body)
-- KEYS[3]  <prefix>:stats           hash: totals
-- KEYS[4]  <prefix>:stats:<minute>  hash: this minute's counts
-- ARGV[1]  id
-- ARGV[2]  status
-- ARGV[3]  result JSON (the body; stored only in the stream)
-- ARGV[4]  text hash of the submitted text
-- ARGV[5]  exact fingerprint
-- ARGV[6]  the revision the body was rendered with
-- ARGV[7]  record TTL, seconds
-- ARGV[8]  per-minute stats TTL, seconds
-- ARGV[9]  submit-to-result latency in ms, or "" if unknown
-- ARGV[10] the latency histogram field for that latency, ``lat:<bucket>`` (see worker/stats.py),
--          or "" if unknown
--
-- The stream is not capped here: ResultStore.trim trims it below the slowest
-- consumer group, so no XADD can silently drop an entry a reader still needs.
-- ``entries`` lists every stream entry of this id (all revisions), so a
-- takedown can XDEL them without scanning the stream.
--
-- Returns {code, entry id, revision}:
--   1  published
--   0  this id already has a result for this very text: nothing written
--  -1  the id's revision moved on meanwhile: re-render with revision+1 and retry

local cur = redis.call("HMGET", KEYS[1], "hash", "rev", "entry", "entries")
if cur[1] == ARGV[4] then
  return {0, cur[3] or "", tonumber(cur[2] or "0")}
end
local rev = tonumber(cur[2] or "0")
if rev + 1 ~= tonumber(ARGV[6]) then
  return {-1, "", rev}
end

local entry = redis.call("XADD", KEYS[2], "*", "id", ARGV[1], "status", ARGV[2], "result", ARGV[3])
local entries = entry
if cur[4] then
  entries = cur[4] .. " " .. entry
end
redis.call("HSET", KEYS[1], "hash", ARGV[4], "rev", rev + 1, "status", ARGV[2],
  "entry", entry, "entries", entries, "fp", ARGV[5])
redis.call("EXPIRE", KEYS[1], tonumber(ARGV[7]))

for i = 3, 4 do
  redis.call("HINCRBY", KEYS[i], ARGV[2], 1)
  if ARGV[9] ~= "" then
    redis.call("HINCRBY", KEYS[i], "latency_n", 1)
    redis.call("HINCRBYFLOAT", KEYS[i], "latency_ms", ARGV[9])
    if ARGV[10] ~= "" then
      redis.call("HINCRBY", KEYS[i], ARGV[10], 1)
    end
  end
end
redis.call("EXPIRE", KEYS[4], tonumber(ARGV[8]))
return {1, entry, rev + 1}
