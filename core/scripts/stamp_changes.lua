-- Stamps items again in the change log (Redis clock, ms) once their write reached the index,
-- and puts their ids on the catalogue feed. The claim (claim_versions.lua) stamps them before
-- the write, and embedding a batch can take longer than the readers' margin: a serving
-- process that read an item in between holds the old row, and this stamp makes it read the
-- item again.
-- KEYS: changes feed
-- ARGV: feed_max *items
local changes, feed = KEYS[1], KEYS[2]
local feed_max = ARGV[1]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local items = {}
for i = 2, #ARGV do
  redis.call('ZADD', changes, now, ARGV[i])
  items[#items + 1] = ARGV[i]
end
if #items > 0 then
  redis.call('XADD', feed, 'MAXLEN', '~', feed_max, '*', 'ids', cjson.encode(items))
end
return #items
