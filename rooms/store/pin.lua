-- Pin a session to a forwarder instance if its pin is still the one the caller saw.
-- KEYS[1]: the pin. ARGV[1]: the pin expected ("" none), ARGV[2]: the new pin ("" unpin),
-- ARGV[3]: seconds the new pin is kept. Returns the pin held afterwards (false: none).
local held = redis.call('GET', KEYS[1])
if (held or '') ~= ARGV[1] then
  return held
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  return false
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return ARGV[2]
