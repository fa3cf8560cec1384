-- Item writes carry their event id (`<ms>-<seq>[-<partition>]`) as a version; an item's events
-- share one partition, so its versions compare by `<ms>-<seq>`. A write older than the last
-- applied one for that item (a reclaimed, long-failed event) is stale and skipped, so it
-- cannot undo a newer edit such as a maturity raise. Every write that goes ahead is stamped (Redis clock, ms) in
-- the change log a running re-index catches up from, and its id goes on the catalogue feed
-- that serving processes follow (follow_catalogue.lua).
-- item_versions: item, version, item, version, ... (version '' = unversioned: always newer).
-- Returns one flag per item: 1 = go ahead, 0 = stale.
-- KEYS: versions changes feed
-- ARGV: feed_max *item_versions
local versions, changes, feed = KEYS[1], KEYS[2], KEYS[3]
local feed_max = ARGV[1]

local out = {}
local stamped = {}
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
for i = 2, #ARGV, 2 do
  local item, version = ARGV[i], ARGV[i + 1]
  local newer = true
  if version ~= '' then
    local cur = redis.call('HGET', versions, item)
    if cur then
      local cm, cs = string.match(cur, '^(%d+)-(%d+)')
      local nm, ns = string.match(version, '^(%d+)-(%d+)')
      cm, cs, nm, ns = tonumber(cm), tonumber(cs), tonumber(nm), tonumber(ns)
      newer = nm > cm or (nm == cm and ns >= cs)
    end
    if newer then redis.call('HSET', versions, item, version) end
  end
  if newer then
    redis.call('ZADD', changes, now, item)
    stamped[#stamped + 1] = item
  end
  out[#out + 1] = newer and 1 or 0
end
if #stamped > 0 then
  redis.call('XADD', feed, 'MAXLEN', '~', feed_max, '*', 'ids', cjson.encode(stamped))
end
return out
