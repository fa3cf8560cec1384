-- A batch of interactions' share of the global counters, each once: popularity, the users
-- index and the trending sets, all in the `boards` slot (core/keys.py), each event behind a
-- marker of its own in that slot, so a redelivered event (or one whose user part ran before
-- a crash) counts once. One call per batch: the slot is the same for every event.
-- rest: one marker per event (unused when dedup_ttl_s is '0', bulk imports), then the
-- trending sets. events: per event, item weight user trending_increment n_scopes and the
-- n_scopes indexes (1-based) of its sets among the trending sets.
-- Returns how many events were counted.
-- KEYS: popularity users *rest
-- ARGV: dedup_ttl_s n_events *events
local popularity, users = KEYS[1], KEYS[2]
local dedup_ttl_s, n_events = ARGV[1], tonumber(ARGV[2])
local first_marker = 3
local first_trending = first_marker + n_events
local counted = 0
local a = 3
for e = 1, n_events do
  local item, weight, user = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local increment, n_scopes = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local fresh = dedup_ttl_s == '0'
  if not fresh then
    fresh = redis.call('SET', KEYS[first_marker + e - 1], 1, 'NX', 'EX', dedup_ttl_s)
  end
  if fresh then
    counted = counted + 1
    if tonumber(weight) > 0 then redis.call('ZINCRBY', popularity, weight, item) end
    if user ~= '' then redis.call('SADD', users, user) end  -- '': a guest's session
    if increment > 0 then
      for j = 1, n_scopes do
        local set = KEYS[first_trending + tonumber(ARGV[a + 4 + j]) - 1]
        redis.call('ZINCRBY', set, increment, item)
      end
    end
  end
  a = a + 5 + n_scopes
end
return counted
