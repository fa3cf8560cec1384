-- An attributable event (positive, citing a served list) counts one click for that list's
-- item, whatever the number of such events: the list's hash keeps a marker field per item, so
-- this is exactly-once on its own. Only the user the list was served to can click it (a shared
-- link citing someone else's list does not count). The served list's fields are written by
-- serving/impressions.py; their record, and the fields read here, are defined in
-- core/served_list.py. Both keys are in the `recs` slot (core/keys.py).
-- Returns 1 if a click was counted.
-- The click also counts in `hourly`, the same fields for the hour it was attributed in,
-- which expires `hourly_ttl` seconds after that hour began.
-- Each event type seen on the item is also marked (`~ev:<type>:<item>`, first time kept): the
-- rewards off-policy evaluation weighs (a watch, a purchase), not only "was clicked".
-- KEYS: served surface_stats hourly
-- ARGV: item ts user hourly_ttl kind
local served, surface_stats, hourly = KEYS[1], KEYS[2], KEYS[3]
local item, ts, user, hourly_ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local kind = ARGV[5]

local raw = redis.call('HGET', served, item)
local ok, d = false, nil
if raw then ok, d = pcall(cjson.decode, raw) end
if not (ok and type(d) == 'table' and type(d.surface) == 'string'
        and type(d.variant) == 'string' and (d.user == nil or d.user == '' or d.user == user)) then
  return 0
end
redis.call('HSETNX', served, '~ev:' .. kind .. ':' .. item, ts)
if redis.call('HSETNX', served, '~clicked:' .. item, ts) == 1 then
  local tail = '|' .. d.variant
  local fields = {'click|' .. d.surface .. '|*' .. tail}
  if type(d.sources) == 'table' then
    for _, src in ipairs(d.sources) do
      fields[#fields + 1] = 'click|' .. d.surface .. '|' .. tostring(src) .. tail
    end
  end
  for _, f in ipairs(fields) do
    redis.call('HINCRBY', surface_stats, f, 1)
    redis.call('HINCRBY', hourly, f, 1)
  end
  redis.call('EXPIRE', hourly, hourly_ttl)
  return 1
end
return 0
