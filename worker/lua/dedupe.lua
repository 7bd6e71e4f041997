-- Judge an article against the dedupe state and register it if new, in one
-- atomic step: of N workers racing on copies of one story, exactly one sees
-- "unique". The rules are those of worker/dedupe/index.py (MemoryIndex follows
-- them line by line).
--
-- KEYS, one group of 2 + ARGV[8] keys per live time bucket, oldest bucket first
-- (the last group is the bucket this call registers into):
--   +1        <prefix>:dd:<bucket>:doc      hash: doc handle -> short sketch .. id
--   +2        <prefix>:dd:<bucket>:<shard>  hash holding this article's exact field
--   +2+j      <prefix>:dd:<bucket>:<shard>  hash holding band j's field (j = 1..ARGV[8])
-- ARGV[1]     article id
-- ARGV[2]     its doc handle (8 bytes)
-- ARGV[3]     its exact field (tag byte .. 16-byte fingerprint)
-- ARGV[4]     its short sketch (the same length for every article)
-- ARGV[5]     equal sketch values that make a near-duplicate
-- ARGV[6]     most candidates compared
-- ARGV[7]     TTL in seconds for the keys of the newest bucket
-- ARGV[8]     number of bands (0 for an article without letters)
-- ARGV[8+j]   band j's field (band number .. band hash)
--
-- Returns {status, duplicate_of, equal sketch values}:
--   {"unique", "", 0}, {"duplicate", first_id, 0} or {"near_duplicate", id, matches}.

local id, own, xfield, sketch = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local need, cap, ttl, nb = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local stride = 2 + nb
local nbuckets = #KEYS / stride
local slen = #sketch

-- Exact: never a duplicate of itself; else the first id that registered it.
for i = 0, nbuckets - 1 do
  local base = i * stride
  local owner = redis.call("HGET", KEYS[base + 2], xfield)
  if owner then
    if owner == own then
      return {"unique", "", 0}
    end
    local doc = redis.call("HGET", KEYS[base + 1], owner)
    if doc then
      return {"duplicate", string.sub(doc, slen + 1), 0}
    end
  end
end

-- Near: compare the candidates that share a band, skipping its own entries.
local best, best_id, seen = 0, "", 0
local compared = {}
local mine
for i = 0, nbuckets - 1 do
  local base = i * stride
  for j = 1, nb do
    local owner = redis.call("HGET", KEYS[base + 2 + j], ARGV[8 + j])
    if owner and owner ~= own and seen < cap and not compared[i .. ":" .. owner] then
      compared[i .. ":" .. owner] = true
      local doc = redis.call("HGET", KEYS[base + 1], owner)
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
local last = (nbuckets - 1) * stride
redis.call("HSET", KEYS[last + 1], own, sketch .. id)
redis.call("HSET", KEYS[last + 2], xfield, own)
for j = 1, nb do
  local owner = redis.call("HGET", KEYS[last + 2 + j], ARGV[8 + j])
  if not owner or redis.call("HEXISTS", KEYS[last + 1], owner) == 0 then
    redis.call("HSET", KEYS[last + 2 + j], ARGV[8 + j], own)
  end
end
for k = last + 1, last + stride do
  redis.call("EXPIRE", KEYS[k], ttl)
end
return {"unique", "", 0}
