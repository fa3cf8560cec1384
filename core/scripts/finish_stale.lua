-- Candidate sets refreshed: remove their owners from the stale queue, unless an owner was
-- marked again since it was taken (its mark time changed): then it stays queued, so a set
-- rebuilt from older state is rebuilt again, but not before `interval` seconds from `now`
-- (a busy user costs one rebuild per interval). Each owner's next due time is kept in `next`
-- (for marks to come), and entries past are dropped. Returns how many owners were removed.
-- KEYS: stale taken next
-- ARGV: now interval *owner_marks
local stale, taken, nxt = KEYS[1], KEYS[2], KEYS[3]
local now, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
local removed = 0
for i = 3, #ARGV, 2 do
  local owner, mark = ARGV[i], ARGV[i + 1]
  redis.call('HDEL', taken, owner)
  local cur = redis.call('ZSCORE', stale, owner)
  if cur and tonumber(cur) == tonumber(mark) then
    removed = removed + redis.call('ZREM', stale, owner)
  elseif cur and interval > 0 then
    redis.call('ZADD', stale, 'XX', 'GT', now + interval, owner)
  end
  if interval > 0 then
    redis.call('ZADD', nxt, now + interval, owner)
  end
end
redis.call('ZREMRANGEBYSCORE', nxt, '-inf', '(' .. ARGV[1])
return removed
