-- Judge an article against the dedupe state and register it if new, atomically.
-- Of N workers racing on copies of one story, exactly one sees "unique".
--
-- KEYS[1..n]  exact-fingerprint hashes, one per time bucket, newest first;
--             fingerprint -> id of the article that registered it
-- ARGV[1]     article id
-- ARGV[2]     exact fingerprint (hex)
-- ARGV[3]     TTL in seconds for a bucket created by this call
--
-- Returns {status, duplicate_of}: {"unique", ""} or {"duplicate", first_id}.
-- The same id is never a duplicate of itself (a redelivered batch, a correction).

local id, fp, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])

for i = 1, #KEYS do
  local owner = redis.call("HGET", KEYS[i], fp)
  if owner then
    if owner == id then
      return {"unique", ""}
    end
    return {"duplicate", owner}
  end
end

redis.call("HSET", KEYS[1], fp, id)
if redis.call("TTL", KEYS[1]) < 0 then
  redis.call("EXPIRE", KEYS[1], ttl)
end
return {"unique", ""}
