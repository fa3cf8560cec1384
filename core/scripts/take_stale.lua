-- Take the `n` owners queued longest and due by `now`, with their marks: event and request
-- marks (times) first, then bulk marks (from `bulk_from` on); owners still inside their
-- refresh interval (marks between `now` and `bulk_from`) wait. Taken owners stay queued until
-- `finish_stale` (a refresher that dies leaves them for the next); they are remembered as
-- taken, so that a mark arriving meanwhile replaces theirs (see `mark_stale`).
-- KEYS: stale taken
-- ARGV: n now bulk_from
local stale, taken = KEYS[1], KEYS[2]
local n = tonumber(ARGV[1])
local got = redis.call('ZRANGEBYSCORE', stale, '-inf', ARGV[2], 'WITHSCORES', 'LIMIT', 0, n)
if #got / 2 < n then
  local bulk = redis.call(
    'ZRANGEBYSCORE', stale, ARGV[3], '+inf', 'WITHSCORES', 'LIMIT', 0, n - #got / 2)
  for i = 1, #bulk do
    got[#got + 1] = bulk[i]
  end
end
for i = 1, #got, 2 do
  redis.call('HSET', taken, got[i], 1)
end
return got
