-- Queue owners for a candidate-set refresh. An owner already queued keeps its earliest mark
-- (a burst of events costs one refresh; an earlier mark moves it forward). An owner a
-- refresher has taken gets the new mark instead: its mark changes, so `finish_stale` keeps
-- it queued and the set is built again from the state this mark announced.
-- KEYS: stale taken
-- ARGV: *owner_marks
local stale, taken = KEYS[1], KEYS[2]
for i = 1, #ARGV, 2 do
  local owner, mark = ARGV[i], ARGV[i + 1]
  if redis.call('HEXISTS', taken, owner) == 1 then
    local now = redis.call('ZSCORE', stale, owner)
    if not now or tonumber(now) ~= tonumber(mark) then
      redis.call('ZADD', stale, mark, owner)
      redis.call('HDEL', taken, owner)
    end
  else
    redis.call('ZADD', stale, 'LT', mark, owner)
  end
end
return 0
