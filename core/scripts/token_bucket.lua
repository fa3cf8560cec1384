-- Token bucket: `rate` tokens per second, at most `burst`. A call takes up to `want` tokens
-- (a replica's lease, spent in-process), at least 1, or none when the bucket has less than 1.
-- Returns {taken, wait_ms until 1 token is back (0 when taken)}.
-- KEYS: bucket
-- ARGV: rate burst want
local bucket = KEYS[1]

local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', bucket, 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate)
local taken = 0
local wait = 0
if tokens >= 1 then
  taken = math.min(math.floor(tokens), math.max(1, want))
  tokens = tokens - taken
else
  wait = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', bucket, 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', bucket, math.ceil(burst / rate * 1000) + 1000)
return {taken, wait}
