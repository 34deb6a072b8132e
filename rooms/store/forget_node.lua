-- Forget a node the reaper has finished with: drop its heartbeat and its session set.
--
-- KEYS[1]  heartbeats (sorted set: node -> unix time of its last heartbeat)
-- KEYS[2]  the node's session set
-- ARGV[1]  node id
-- ARGV[2]  the heartbeat the reaper found stale, or '' to forget unconditionally
--
-- With ARGV[2], a node that has beaten since (it came back) or is tracked in a session again
-- is kept. Returns 1 when forgotten, else 0.
if ARGV[2] ~= '' then
  local beat = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if beat and tonumber(beat) > tonumber(ARGV[2]) then
    return 0
  end
  if redis.call('SCARD', KEYS[2]) > 0 then
    return 0
  end
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
