-- Queue owners for a candidate-set refresh. An owner already queued keeps its earliest mark
-- (a burst of events costs one refresh; an earlier mark moves it forward). An owner a
-- refresher has taken gets the new mark instead: its mark changes, so `finish_stale` keeps
-- it queued and the set is built again from the state this mark announced. An owner rebuilt
-- less than the refresh interval ago is not due before its `next` time (its mark says when).
-- KEYS: stale taken next
-- ARGV: *owner_marks
local stale, taken, nxt = KEYS[1], KEYS[2], KEYS[3]
for i = 1, #ARGV, 2 do
  local owner, mark = ARGV[i], tonumber(ARGV[i + 1])
  local due = redis.call('ZSCORE', nxt, owner)
  if due and tonumber(due) > mark then
    mark = tonumber(due)
  end
  if redis.call('HEXISTS', taken, owner) == 1 then
    local now = redis.call('ZSCORE', stale, owner)
    if not now or tonumber(now) ~= mark then
      redis.call('ZADD', stale, mark, owner)
      redis.call('HDEL', taken, owner)
    end
  else
    redis.call('ZADD', stale, 'LT', mark, owner)
  end
end
return 0
