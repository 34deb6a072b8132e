-- Queue a check-in request unless one of its people already has a waiting one.
-- KEYS: doc, waiting zset, all zset, log list, open key of each person
-- ARGV: id, doc, score (ms), record JSON (without seq)
-- Returns {1, ""} when queued, {0, id} with the open request's id otherwise.
for i = 5, #KEYS do
  local open = redis.call('GET', KEYS[i])
  if open then return {0, open} end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
for i = 5, #KEYS do redis.call('SET', KEYS[i], ARGV[1]) end
local record = cjson.decode(ARGV[4])
record['seq'] = redis.call('LLEN', KEYS[4]) + 1
redis.call('RPUSH', KEYS[4], cjson.encode(record))
return {1, ''}
