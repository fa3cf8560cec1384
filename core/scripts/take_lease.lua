-- The item-write lease: held unless a re-index froze item writes to swap collections.
-- Returns 1 when the lease is held (until now + lease_ms, Redis clock), 0 when frozen.
-- KEYS: freeze writers
-- ARGV: writer lease_ms
local freeze, writers = KEYS[1], KEYS[2]
local writer, lease_ms = ARGV[1], ARGV[2]

if redis.call('EXISTS', freeze) == 1 then return 0 end
local t = redis.call('TIME')
redis.call('ZADD', writers, t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(lease_ms), writer)
return 1
