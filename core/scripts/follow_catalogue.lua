-- The catalogue marks a serving process keeps in memory (core/stores/catalogue.py), brought
-- up to date in one atomic read. Writers put the ids of every tombstone and change-log write on
-- the feed after the write itself, so the scores read here are at least as new as the entries.
--   last = ''  : {'all', top, tombstones (member, score, ...), changes (member, score, ...)},
--                or {'big', top} when both sets hold more than `max_all` members together (a
--                catalogue imported within the hour: the follower reads the ids directly then)
--   nothing new: {'none', last}
--   `last` trimmed from the feed (a follower that fell behind it): {'gap'}
--   else       : {'delta', new_last, more, ids, tombstone scores, change scores}, the ids named by
--                up to `count` entries after `last` (more = 1: there are further entries).
-- KEYS: feed tomb changes
-- ARGV: last count max_all
local feed, tomb, changes = KEYS[1], KEYS[2], KEYS[3]
local last, count, max_all = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

local top = redis.call('XREVRANGE', feed, '+', '-', 'COUNT', 1)
local top_id = top[1] and top[1][1] or '0-0'
if last == '' then
  if redis.call('ZCARD', tomb) + redis.call('ZCARD', changes) > max_all then
    return {'big', top_id}
  end
  return {
    'all', top_id,
    redis.call('ZRANGE', tomb, 0, -1, 'WITHSCORES'),
    redis.call('ZRANGE', changes, 0, -1, 'WITHSCORES'),
  }
end
if top_id == last then
  return {'none', last}
end

local function older(a, b)  -- stream ids `ms-seq`: a < b
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end

-- Entries after `last` were trimmed only if `last` itself was (the oldest kept entry is newer):
-- read everything again (also when the feed was deleted, or first written since an empty one).
-- A newest entry older than `last`: the feed was written anew (a server that lost its data).
local first = redis.call('XRANGE', feed, '-', '+', 'COUNT', 1)
if first[1] == nil or older(last, first[1][1]) or older(top_id, last) then
  return {'gap'}
end

local entries = redis.call('XRANGE', feed, '(' .. last, '+', 'COUNT', count)
local ids, seen = {}, {}
for _, e in ipairs(entries) do
  local fields = e[2]
  for k = 1, #fields, 2 do
    if fields[k] == 'ids' then
      for _, id in ipairs(cjson.decode(fields[k + 1])) do
        if not seen[id] then
          seen[id] = true
          ids[#ids + 1] = id
        end
      end
    end
  end
end
local new_last = entries[#entries] and entries[#entries][1] or last
local more = (#entries >= count) and 1 or 0
local function scores(key)  -- ZMSCORE in chunks (unpack is bounded by Lua's stack)
  local out = {}
  for i = 1, #ids, 1000 do
    local got = redis.call('ZMSCORE', key, unpack(ids, i, math.min(i + 999, #ids)))
    for _, v in ipairs(got) do out[#out + 1] = v end
  end
  return out
end
return {'delta', new_last, more, ids, scores(tomb), scores(changes)}
