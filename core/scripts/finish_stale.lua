-- Candidate sets refreshed: remove their owners from the stale queue, unless an owner was
-- marked again since it was taken (its mark time changed): then it stays queued, so a set
-- rebuilt from older state is rebuilt again. Returns how many owners were removed.
-- KEYS: stale taken
-- ARGV: *owner_marks
local stale, taken = KEYS[1], KEYS[2]
local removed = 0
for i = 1, #ARGV, 2 do
  local owner, mark = ARGV[i], ARGV[i + 1]
  redis.call('HDEL', taken, owner)
  local now = redis.call('ZSCORE', stale, owner)
  if now and tonumber(now) == tonumber(mark) then
    removed = removed + redis.call('ZREM', stale, owner)
  end
end
return removed
