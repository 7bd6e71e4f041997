-- Judge an article against the dedupe state and register it if new, in one
-- atomic step: of N workers racing on copies of one story, exactly one sees
-- "unique". The rules are those of worker/dedupe/index.py (MemoryIndex follows
-- them line by line).
--
-- KEYS[i]     <prefix>:dd:<bucket>:doc for each live time bucket, oldest first
--             (the last is the bucket this call registers into); a bucket
--             whose doc hash does not exist holds nothing that can match (every
--             match needs its document), so its shards are not read; hash:
--             doc handle -> short sketch .. NUL .. 3-gram count (4 bytes,
--             little-endian) .. id (a document stored before counts were kept
--             is short sketch .. id: no NUL). The bucket's shard hashes,
--             <prefix>:dd:<bucket>:<shard> (exact, band or lead field -> doc handle),
--             are named from it: the same name with the shard number in place
--             of "doc" (see worker/keys.py). Passing them all would take 200 keys.
-- ARGV[1]     article id
-- ARGV[2]     its doc handle (8 bytes)
-- ARGV[3]     its exact field (tag byte .. 16-byte fingerprint)
-- ARGV[4]     its short sketch (the same length for every article)
-- ARGV[5]     equal sketch values that make a near-duplicate
-- ARGV[6]     most candidates compared
-- ARGV[7]     TTL in seconds for the keys of the newest bucket
-- ARGV[8]     nb: number of candidate fields (the bands, then the lead; 0 for
--             an article without letters)
-- ARGV[9]     shard of the exact field
-- ARGV[10]    shard of each candidate field, 4 bytes each (little-endian), in order
-- ARGV[11]    each candidate field, 6 bytes each (band number .. band hash, or
--             0xfe .. lead hash), in order: two arguments instead of 2 * nb,
--             which the client packs in a third of the time
-- ARGV[12]    its 3-gram count (0: unknown)
-- ARGV[13]    what its document holds after the sketch (NUL .. count .. id)
-- ARGV[14]    containment: equal sketch values needed at least
-- ARGV[15]    containment: 3-grams the smaller text needs at least
-- ARGV[16], ARGV[17] containment share needed, as numerator, denominator
--
-- A candidate qualifies when its equal sketch values reach ARGV[5] or when the
-- smaller of the two 3-gram sets is estimated to be mostly inside the larger
-- (worker/dedupe/index.py, contained(); integers, exact in doubles).
--
-- Returns {status, duplicate_of, equal sketch values, its 3-gram count}:
--   {"unique", "", 0, -1}, {"duplicate", first_id, 0, -1} or
--   {"near_duplicate", id, matches, count (-1 when stored without one)}.

local id, own, xfield, sketch = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local need, cap, ttl, nb = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local slen = #sketch
local size, tail = tonumber(ARGV[12]), ARGV[13]
local cmin, csize = tonumber(ARGV[14]), tonumber(ARGV[15])
local cnum, cden = tonumber(ARGV[16]), tonumber(ARGV[17])
local perm = slen / 2

-- The candidate fields and the shard of each, unpacked.
local shards, fields = {}, {}
for j = 1, nb do
  local b1, b2, b3, b4 = string.byte(ARGV[10], 4 * j - 3, 4 * j)
  shards[j] = b1 + 256 * (b2 + 256 * (b3 + 256 * b4))
  fields[j] = string.sub(ARGV[11], 6 * j - 5, 6 * j)
end

-- A stored document's 3-gram count (nil if stored without one) and id.
local function read_doc(doc)
  if string.byte(doc, slen + 1) == 0 then
    local b1, b2, b3, b4 = string.byte(doc, slen + 2, slen + 5)
    return b1 + 256 * (b2 + 256 * (b3 + 256 * b4)), string.sub(doc, slen + 6)
  end
  return nil, string.sub(doc, slen + 1)
end

local function contained(m, theirs)
  if size == 0 or not theirs or m < cmin then
    return false
  end
  local small = math.min(size, theirs)
  return small >= csize and m * (size + theirs) * cden >= cnum * small * (perm + m)
end

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
      return {"unique", "", 0, -1}
    end
    local _, first = read_doc(doc)
    return {"duplicate", first, 0, -1}
  end
end

-- Near: compare the candidates that share a band, skipping its own entries.
local best, best_id, best_size, seen = 0, "", -1, 0
local compared = {}
local mine
for _, i in ipairs(live) do
  local prefix = string.sub(KEYS[i], 1, -4)
  for j = 1, nb do
    local owner = redis.call("HGET", prefix .. shards[j], fields[j])
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
        local theirs, their_id = read_doc(doc)
        if m > best and (m >= need or contained(m, theirs)) then
          best, best_id, best_size = m, their_id, theirs or -1
        end
      end
    end
  end
end
if best > 0 then
  return {"near_duplicate", best_id, best, best_size}
end

-- New: register it in the newest bucket. A band field keeps its first owner
-- unless that owner was forgotten.
--
-- Every key of the bucket expires at the same moment, the bucket's end plus the
-- window (ARGV[7] counts down to it), so a key needs its TTL set once: when it
-- has none, which is when this call created it. A TTL read costs about half an
-- EXPIRE, which Redis also rewrites for replication.
local last = #KEYS
local function expire_new(key)
  if redis.call("TTL", key) < 0 then
    redis.call("EXPIRE", key, ttl)
  end
end
redis.call("HSET", KEYS[last], own, sketch .. tail)
expire_new(KEYS[last])
local xkey = shard(last, ARGV[9])
redis.call("HSET", xkey, xfield, own)
expire_new(xkey)
for j = 1, nb do
  local key, field = shard(last, shards[j]), fields[j]
  if redis.call("HSETNX", key, field, own) == 1 then
    expire_new(key)
  elseif redis.call("HEXISTS", KEYS[last], redis.call("HGET", key, field)) == 0 then
    redis.call("HSET", key, field, own)
  end
end
return {"unique", "", 0, -1}
