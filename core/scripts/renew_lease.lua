-- A partition lease: kept (or taken back, if it lapsed and nobody took it) by its holder.
-- Returns 1 when `holder` holds it for another `ttl_ms`, 0 when another worker does.
-- KEYS: lease
-- ARGV: holder ttl_ms
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
