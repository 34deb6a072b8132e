-- Append one entry to the admin audit log, if the log's head is still the one it was built on.
--
-- KEYS[1]  the log (a stream; entry ids are "<seq>-0", so a duplicate seq is refused by XADD)
-- KEYS[2]  the head (hash): s = seq of the last entry, h = its chain hash, w = writer token
-- ARGV[1]  the head hash the entry was chained to ('' for the first entry)
-- ARGV[2]  the entry's seq      ARGV[3] its hash      ARGV[4] its JSON
-- ARGV[5]  writer token, unique per attempt
--
-- Returns {1} when appended, else {0, current seq, current head hash, current writer token}:
-- the caller rebuilds its entry on that head, and recognises its own earlier append (a reply
-- lost to a dropped connection, then retried) by the token.
local head = redis.call('HMGET', KEYS[2], 's', 'h', 'w')
local current = head[2] or ''
if current ~= ARGV[1] then
  return {0, head[1] or '0', current, head[3] or ''}
end
redis.call('XADD', KEYS[1], ARGV[2] .. '-0', 'e', ARGV[4])
redis.call('HSET', KEYS[2], 's', ARGV[2], 'h', ARGV[3], 'w', ARGV[5])
return {1}
