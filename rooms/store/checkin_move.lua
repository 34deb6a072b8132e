-- Move a check-in request out of "waiting" by compare-and-set of its whole document.
-- KEYS: doc, waiting zset, log list, open key of each person
-- ARGV: expected doc, new doc, id, record JSON (without seq), "1" when it leaves the queue
-- Returns {1, ""} when written, {0, current doc or ""} when the document had changed.
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then return {0, current or ''} end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[5] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[3])
  for i = 4, #KEYS do
    if redis.call('GET', KEYS[i]) == ARGV[3] then redis.call('DEL', KEYS[i]) end
  end
end
local record = cjson.decode(ARGV[4])
record['seq'] = redis.call('LLEN', KEYS[3]) + 1
redis.call('RPUSH', KEYS[3], cjson.encode(record))
return {1, ''}
