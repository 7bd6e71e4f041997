-- Judge an article against the dedupe state and register it if new, in one
-- atomic step: of N workers racing on copies of one story, exactly one sees
-- "unique". The rules are those of worker/dedupe/index.py (MemoryIndex follows
-- them line by line).
--
-- KEYS[i]     <prefix>:dd:<bucket>:doc for each live time bucket, oldest first
--             (the last is the bucket this call registers into); a bucket
--             whose doc hash does not exist holds nothing that can match (every
--             match needs its document), so its shards are not read; hash:
--             doc handle -> short sketch .. id. The bucket's shard hashes,
--             <prefix>:dd:<bucket>:<shard> (exact or band field -> doc handle),
--             are named from it: the same name with the shard number in place
--             of "doc" (see worker/keys.py). Passing them all would take 200 keys.
-- ARGV[1]     article id
-- ARGV[2]     its doc handle (8 bytes)
-- ARGV[3]     its exact field (tag byte .. 16-byte fingerprint)
-- ARGV[4]     its short sketch (the same length for every article)
-- ARGV[5]     equal sketch values that make a near-duplicate
-- ARGV[6]     most candidates compared
-- ARGV[7]     TTL in seconds for the keys of the newest bucket
-- ARGV[8]     nb: number of bands (0 for an article without letters)
-- ARGV[9]     shard of the exact field
-- ARGV[9+j]   shard of band j's field (j = 1..nb)
-- ARGV[9+nb+j] band j's field (band number .. band hash)
--
-- Returns {status, duplicate_of, equal sketch values}:
--   {"unique", "", 0}, {"duplicate", first_id, 0} or {"near_duplicate", id, matches}.

local id, own, xfield, sketch = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local need, cap, ttl, nb = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local slen = #sketch

local function shard(i, n)
  return string.sub(KEYS[i], 1, -4) .. n
end

-- The buckets that hold documents: one EXISTS each instead of 25 reads of an
-- empty bucket (a young deployment, or a quiet day).
local live = {}
for i = 1, #KEYS do
  if redis.call("EXISTS", KEYS[i]) == 1 then
    live[#live + 1] = i
  end
end

-- Exact: never a duplicate of itself; else the first id that registered it
-- (an entry whose document was forgotten counts for nothing).
for _, i in ipairs(live) do
  local owner = redis.call("HGET", shard(i, ARGV[9]), xfield)
  local doc = owner and redis.call("HGET", KEYS[i], owner)
  if doc then
    if owner == own then
      return {"unique", "", 0}
    end
    return {"duplicate", string.sub(doc, slen + 1), 0}
  end
end

-- Near: compare the candidates that share a band, skipping its own entries.
local best, best_id, seen = 0, "", 0
local compared = {}
local mine
for _, i in ipairs(live) do
  local prefix = string.sub(KEYS[i], 1, -4)
  for j = 1, nb do
    local owner = redis.call("HGET", prefix .. ARGV[9 + j], ARGV[9 + nb + j])
    if owner and owner ~= own and seen < cap and not compared[i .. ":" .. owner] then
      compared[i .. ":" .. owner] = true
      local doc = redis.call("HGET", KEYS[i], owner)
      if doc then
        seen = seen + 1
        mine = mine or {string.byte(sketch, 1, slen)}
        local theirs = {string.byte(doc, 1, slen)}
        local m = 0
        for p = 1, slen, 2 do
          if mine[p] == theirs[p] and mine[p + 1] == theirs[p + 1] then
            m = m + 1
          end
        end
        if m > best then
          best, best_id = m, string.sub(doc, slen + 1)
        end
      end
    end
  end
end
if best >= need then
  return {"near_duplicate", best_id, best}
end

-- New: register it in the newest bucket. A band field keeps its first owner
-- unless that owner was forgotten.
local last = #KEYS
redis.call("HSET", KEYS[last], own, sketch .. id)
redis.call("EXPIRE", KEYS[last], ttl)
local xkey = shard(last, ARGV[9])
redis.call("HSET", xkey, xfield, own)
redis.call("EXPIRE", xkey, ttl)
for j = 1, nb do
  local key, field = shard(last, ARGV[9 + j]), ARGV[9 + nb + j]
  if redis.call("HSETNX", key, field, own) == 1 then
    redis.call("EXPIRE", key, ttl)
  elseif redis.call("HEXISTS", KEYS[last], redis.call("HGET", key, field)) == 0 then
    redis.call("HSET", key, field, own)
  end
end
return {"unique", "", 0}
