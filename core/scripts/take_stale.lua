-- Take the `n` owners queued longest for a refresh, with their marks. They stay queued until
-- `finish_stale` (a refresher that dies leaves them for the next); they are remembered as
-- taken, so that a mark arriving meanwhile replaces theirs (see `mark_stale`).
-- KEYS: stale taken
-- ARGV: n
local stale, taken = KEYS[1], KEYS[2]
local got = redis.call('ZRANGE', stale, 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
for i = 1, #got, 2 do
  redis.call('HSET', taken, got[i], 1)
end
return got
