-- One interaction, atomically: set its "done" marker and, only if it was not set before,
-- apply its effects. Two workers holding the same event (a reclaim while the first is still
-- busy) can both run this; exactly one of them changes anything. Returns 1 if applied, 0 if
-- the event was applied before.
-- Explicit negatives (dislike, skip) go to the user's negatives set; an explicit positive
-- (like, watch, purchase, a rating of 3.5+) after the last negative on that item takes it out
-- again (the user changed their mind). A view or click does not: it may just be the page.
-- An attributable event (positive, citing a served list) counts one click for that list's
-- item, whatever the number of such events: the list's hash keeps a marker field per item.
-- Only the user the list was served to can click it (a shared link citing someone else's
-- list does not count). The served list's fields are written by serving/impressions.py; their
-- record, and the fields read here, are defined in core/served_list.py.
-- served: the cited list's hash (not read unless attributable); trending: the sets to add to.
-- dedup_ttl_s: '0' = no marker (bulk imports); negative, attributable, lifts_negative: 1/0.
-- KEYS: done history affinity confidence popularity users negatives served surface_stats *trending
-- ARGV: item ts weight confidence_weight dedup_ttl_s history_len user trending_increment negative negatives_len attributable lifts_negative
local done, history, affinity, confidence = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local popularity, users, negatives = KEYS[5], KEYS[6], KEYS[7]
local served, surface_stats = KEYS[8], KEYS[9]
local first_trending = 10
local item, ts, weight, confidence_weight = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local dedup_ttl_s, history_len, user = ARGV[5], ARGV[6], ARGV[7]
local trending_increment, negative, negatives_len = ARGV[8], ARGV[9], ARGV[10]
local attributable, lifts_negative = ARGV[11], ARGV[12]

if dedup_ttl_s ~= '0' then
  if not redis.call('SET', done, 1, 'NX', 'EX', dedup_ttl_s) then return 0 end
end
redis.call('ZADD', history, 'GT', ts, item)
redis.call('HINCRBYFLOAT', affinity, item, weight)
if tonumber(confidence_weight) > 0 then
  redis.call('HINCRBYFLOAT', confidence, item, confidence_weight)
end
-- The history keeps its newest history_len items; the per-item affinity and confidence of
-- the items it drops go with them, so a user's state stays bounded.
local dropped = redis.call('ZRANGE', history, 0, -tonumber(history_len) - 1)
if #dropped > 0 then
  redis.call('ZREMRANGEBYRANK', history, 0, -tonumber(history_len) - 1)
  redis.call('HDEL', affinity, unpack(dropped))
  redis.call('HDEL', confidence, unpack(dropped))
end
if tonumber(weight) > 0 then redis.call('ZINCRBY', popularity, weight, item) end
redis.call('SADD', users, user)
if negative == '1' then
  redis.call('ZADD', negatives, 'GT', ts, item)
  redis.call('ZREMRANGEBYRANK', negatives, 0, -tonumber(negatives_len) - 1)
elseif lifts_negative == '1' then
  local since = redis.call('ZSCORE', negatives, item)
  if since and tonumber(since) < tonumber(ts) then redis.call('ZREM', negatives, item) end
end
if attributable == '1' then
  local raw = redis.call('HGET', served, item)
  local ok, d = false, nil
  if raw then ok, d = pcall(cjson.decode, raw) end
  if ok and type(d) == 'table' and type(d.surface) == 'string' and type(d.variant) == 'string'
     and (d.user == nil or d.user == '' or d.user == user)
     and redis.call('HSETNX', served, '~clicked:' .. item, ts) == 1 then
    local tail = '|' .. d.variant
    redis.call('HINCRBY', surface_stats, 'click|' .. d.surface .. '|*' .. tail, 1)
    if type(d.sources) == 'table' then
      for _, src in ipairs(d.sources) do
        redis.call('HINCRBY', surface_stats, 'click|' .. d.surface .. '|' .. tostring(src) .. tail, 1)
      end
    end
  end
end
if tonumber(trending_increment) > 0 then
  for i = first_trending, #KEYS do redis.call('ZINCRBY', KEYS[i], trending_increment, item) end
end
return 1
