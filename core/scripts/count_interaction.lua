-- One interaction's share of the global counters, once: popularity, the users index and the
-- trending sets, all in the `boards` slot (core/keys.py), behind a marker of their own in that
-- slot, so a redelivered event (or one whose user part ran before a crash) counts once.
-- Returns 1 if counted, 0 if it was counted before.
-- dedup_ttl_s: '0' = no marker (bulk imports); trending: the sets to add to.
-- KEYS: done popularity users *trending
-- ARGV: item weight user trending_increment dedup_ttl_s
local done, popularity, users = KEYS[1], KEYS[2], KEYS[3]
local first_trending = 4
local item, weight, user, trending_increment, dedup_ttl_s = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

if dedup_ttl_s ~= '0' then
  if not redis.call('SET', done, 1, 'NX', 'EX', dedup_ttl_s) then return 0 end
end
if tonumber(weight) > 0 then redis.call('ZINCRBY', popularity, weight, item) end
redis.call('SADD', users, user)
if tonumber(trending_increment) > 0 then
  for i = first_trending, #KEYS do redis.call('ZINCRBY', KEYS[i], trending_increment, item) end
end
return 1
