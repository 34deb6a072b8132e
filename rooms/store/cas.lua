-- Compare-and-set one session document and append its ledger events, atomically.
--
-- KEYS[1]  state hash: v (version), doc (SessionState JSON), w (token of the last writer)
-- KEYS[2]  event stream (the attendance ledger; never expired)
-- KEYS[3]  sessions index (sorted set scored by scheduled start)
-- KEYS[4]  the session's spec (JSON; never expired, so the ledger stays summarizable)
-- KEYS[5..] session sets of the nodes with an endpoint in the new doc: the session is added
--           to each, so no endpoint is ever committed untracked (see the reaper)
-- ARGV[1]  expected version; '' means the session must not exist yet (create)
-- ARGV[2]  new version      ARGV[3] new doc      ARGV[4] writer token
-- ARGV[5]  seconds to keep the state hash, '0' to keep it forever (set once a session ends)
-- ARGV[6]  index score, '' to leave the index alone      ARGV[7] session id (index member)
-- ARGV[8]  spec JSON to store (on create), '' to leave it alone
-- ARGV[9..] event JSON, one stream entry each
--
-- Returns {1} when written, else {0, current version, current doc, current writer token}:
-- the caller retries from that doc without another read, and recognises its own earlier write
-- (a reply lost to a dropped connection, then retried) by the token.
local current = redis.call('HGET', KEYS[1], 'v') or ''
if current ~= ARGV[1] then
  local found = redis.call('HMGET', KEYS[1], 'doc', 'w')
  return {0, current, found[1] or '', found[2] or ''}
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'doc', ARGV[3], 'w', ARGV[4])
for i = 9, #ARGV do
  redis.call('XADD', KEYS[2], '*', 'e', ARGV[i])
end
if ARGV[8] ~= '' then
  redis.call('SET', KEYS[4], ARGV[8])
end
if ARGV[5] ~= '0' then
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
if ARGV[6] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[7])
end
for i = 5, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[7])
end
return {1}
