-- Publish outcomes, each with its results stream entry and its per-id record
-- together, exactly once per (id, text); then count them in the stats, once
-- for all of them. One call carries up to about 96 KB of a round trip's
-- results (worker/results.py, EMIT_CALL_BYTES).
--
-- KEYS[1]      <prefix>:results         stream: id, status, result (the body)
-- KEYS[2]      <prefix>:stats           hash: totals
-- KEYS[3]      <prefix>:stats:<minute>  hash: this minute's counts
-- KEYS[3+i]    <prefix>:result:<id>     hash of outcome i: hash, rev, status, entry, entries, fp
-- ARGV[1]      record TTL, seconds
-- ARGV[2]      per-minute stats TTL, seconds
-- and for outcome i (i = 1..#KEYS-3), from j = 2 + 8 * (i - 1):
-- ARGV[j+1]    id
-- ARGV[j+2]    status
-- ARGV[j+3]    result JSON (the body; stored only in the stream)
-- ARGV[j+4]    text hash of the submitted text
-- ARGV[j+5]    exact fingerprint
-- ARGV[j+6]    the revision the body was rendered with
-- ARGV[j+7]    submit-to-result latency in ms, or "" if unknown
-- ARGV[j+8]    the latency histogram field for that latency, ``lat:<bucket>``
--              (see worker/stats.py), or "" if unknown
--
-- The stream is not capped here: ResultStore.trim trims it below the slowest
-- consumer group, so no XADD can silently drop an entry a reader still needs.
-- ``entries`` lists every stream entry of this id (all revisions), so a
-- takedown can XDEL them without scanning the stream. The stats are added
-- after the loop, a few fields for the whole call: a call that Redis stops
-- half-way (out of memory) leaves the outcomes it published before uncounted.
--
-- Returns, for each outcome in order, {code, entry id, revision}:
--   1  published (and counted)
--   0  this id already has a result for this very text: nothing written
--  -1  the id's revision moved on meanwhile: re-render with revision+1 and retry

local record_ttl, minute_ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local replies = {}
-- What the published outcomes add to the stats: field -> count, and the latency sum.
local counts, latency_ms = {}, 0

local function count(field)
  counts[field] = (counts[field] or 0) + 1
end

for i = 1, #KEYS - 3 do
  local key, j = KEYS[3 + i], 2 + 8 * (i - 1)
  local id, status, body, hash, fp = ARGV[j + 1], ARGV[j + 2], ARGV[j + 3], ARGV[j + 4], ARGV[j + 5]
  local cur = redis.call("HMGET", key, "hash", "rev", "entry", "entries")
  local rev = tonumber(cur[2] or "0")
  if cur[1] == hash then
    replies[i] = {0, cur[3] or "", rev}
  elseif rev + 1 ~= tonumber(ARGV[j + 6]) then
    replies[i] = {-1, "", rev}
  else
    local entry = redis.call("XADD", KEYS[1], "*", "id", id, "status", status, "result", body)
    local entries = entry
    if cur[4] then
      entries = cur[4] .. " " .. entry
    end
    redis.call("HSET", key, "hash", hash, "rev", rev + 1, "status", status,
      "entry", entry, "entries", entries, "fp", fp)
    redis.call("EXPIRE", key, record_ttl)
    replies[i] = {1, entry, rev + 1}
    count(status)
    if ARGV[j + 7] ~= "" then
      count("latency_n")
      latency_ms = latency_ms + tonumber(ARGV[j + 7])
      if ARGV[j + 8] ~= "" then
        count(ARGV[j + 8])
      end
    end
  end
end

if next(counts) then
  for k = 2, 3 do
    for field, n in pairs(counts) do
      redis.call("HINCRBY", KEYS[k], field, n)
    end
    if counts["latency_n"] then
      redis.call("HINCRBYFLOAT", KEYS[k], "latency_ms", string.format("%.1f", latency_ms))
    end
  end
  redis.call("EXPIRE", KEYS[3], minute_ttl)
end
return replies
