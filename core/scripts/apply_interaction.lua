-- One interaction's effect on its user, atomically: set its "done" marker and, only if it was
-- not set before, apply it. Two workers holding the same event (a reclaim while the first is
-- still busy) can both run this; exactly one of them changes anything. Returns 1 if applied,
-- 0 if the event was applied before. Every key is in the user's slot (core/keys.py); the
-- global counters (count_interactions.lua) and the click on a served list
-- (attribute_click.lua) are separate calls, each exactly-once on its own.
-- Explicit negatives (dislike, skip) go to the user's negatives set; an explicit positive
-- (like, watch, purchase, a rating of 3.5+) after the last negative on that item takes it out
-- again (the user changed their mind). A view or click does not: it may just be the page.
-- dedup_ttl_s: '0' = no marker (bulk imports); negative, lifts_negative: 1/0.
-- A user who paused their history (`controls` field paused = 1, core/stores/controls.py)
-- keeps their profile as it is: the event is marked done and 2 is returned, and only an
-- explicit dislike or skip is kept (popularity, trending and attribution are separate calls
-- and still count it).
-- A guest's session (journal_entry not empty) also appends the event to its journal, the
-- newest journal_len kept, for a merge into a user; its keys expire after session_ttl_s
-- without an event (a backstop: the worker's sweep deletes an idle session first).
-- The device an event names (ARGV device, '' when it named none) is kept per history item:
-- the device of the item's newest use that named one (an event without a device, such as a
-- server-side purchase, leaves it; an older event delivered late does not overwrite it).
-- KEYS: done history affinity confidence negatives controls journal devices
-- ARGV: item ts weight confidence_weight dedup_ttl_s history_len negative negatives_len lifts_negative journal_entry journal_len session_ttl_s device
local done, history, affinity, confidence, negatives = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local controls = KEYS[6]
local item, ts, weight, confidence_weight = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local dedup_ttl_s, history_len = ARGV[5], ARGV[6]
local negative, negatives_len, lifts_negative = ARGV[7], ARGV[8], ARGV[9]
local journal, journal_entry, journal_len, session_ttl_s = KEYS[7], ARGV[10], ARGV[11], ARGV[12]
local devices, device = KEYS[8], ARGV[13]

if dedup_ttl_s ~= '0' then
  if not redis.call('SET', done, 1, 'NX', 'EX', dedup_ttl_s) then return 0 end
end
-- A session's keys expire session_ttl_s after its last event (set after the writes: EXPIRE
-- of a key this event creates would do nothing before).
local function expire_session()
  if journal_entry == '' then return end
  for _, key in ipairs({journal, history, affinity, confidence, negatives, devices}) do
    redis.call('EXPIRE', key, session_ttl_s)
  end
end
if journal_entry ~= '' then
  redis.call('RPUSH', journal, journal_entry)
  redis.call('LTRIM', journal, -tonumber(journal_len), -1)
end
if redis.call('HGET', controls, 'paused') == '1' then
  -- An explicit dislike still counts: it is a control, not history.
  if negative == '1' then
    redis.call('ZADD', negatives, 'GT', ts, item)
    redis.call('ZREMRANGEBYRANK', negatives, 0, -tonumber(negatives_len) - 1)
  end
  expire_session()
  return 2
end
redis.call('ZADD', history, 'GT', ts, item)
if device ~= '' and tonumber(redis.call('ZSCORE', history, item)) <= tonumber(ts) then
  redis.call('HSET', devices, item, device)
end
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
  redis.call('HDEL', devices, unpack(dropped))
end
if negative == '1' then
  redis.call('ZADD', negatives, 'GT', ts, item)
  redis.call('ZREMRANGEBYRANK', negatives, 0, -tonumber(negatives_len) - 1)
elseif lifts_negative == '1' then
  local since = redis.call('ZSCORE', negatives, item)
  if since and tonumber(since) < tonumber(ts) then redis.call('ZREM', negatives, item) end
end
expire_session()
return 1
