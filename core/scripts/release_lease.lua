-- Give a partition lease back, only if `holder` still holds it. Returns 1 if released.
-- KEYS: lease
-- ARGV: holder
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
