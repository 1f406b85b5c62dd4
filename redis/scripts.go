package redis

import goredis "github.com/redis/go-redis/v9"

// The run logs live in these keys, each under the prefix (Options.Prefix):
//
//	run:ID      hash: state, next (the number the next event gets), bytes,
//	            owner (the replica producing it), key (idempotency key)
//	log:ID      stream: event N has the entry id 0-(N+1) and one field, e,
//	            "t" and a token's text or "j" and the event's JSON
//	lease:ID    string, expiring: set while the owner is alive
//	readers:ID  sorted set: replicas with readers of the run, by expiry
//	key:K       string: the run an idempotency key asked for
//	ended       sorted set: ended runs kept for their readers, by end time
//	ended:size  hash: the bytes of each kept run
//	ended:bytes the sum of ended:size
//
// and publish on two channels: events:ID (the number of the last event
// appended) and stop (the id of a run that was canceled or orphaned, for
// the replica producing it).
//
// Every change is a script, so a run's state and its log change together:
// a cancel from one replica and the producer's append from another are
// ordered, and the canceled event is numbered right after the last event
// appended. The scripts name keys of more than one run (eviction), so the
// store is one Redis server (with replicas or Sentinel), not a Cluster.

// finishLua ends run id in state: it sets the retention on the run's keys,
// records it among the ended runs and evicts the oldest ended runs while
// they are past the retention, too many or too big.
const finishLua = `
local function finish(p, id, state, now, retention, maxRuns, maxBytes)
  local meta = p .. 'run:' .. id
  redis.call('HSET', meta, 'state', state, 'ended', now)
  local bytes = tonumber(redis.call('HGET', meta, 'bytes') or '0')
  local key = redis.call('HGET', meta, 'key')
  redis.call('PEXPIRE', meta, retention)
  redis.call('PEXPIRE', p .. 'log:' .. id, retention)
  redis.call('DEL', p .. 'lease:' .. id, p .. 'readers:' .. id)
  if key and key ~= '' then redis.call('PEXPIRE', p .. 'key:' .. key, retention) end
  -- Ordered by the end, and runs that end within the same millisecond (or
  -- on a replica whose clock is behind) in the order they ended here, so
  -- that the oldest is the one evicted first.
  local score = now
  local newest = redis.call('ZRANGE', p .. 'ended', -1, -1, 'WITHSCORES')
  if #newest > 0 and tonumber(newest[2]) >= score then score = tonumber(newest[2]) + 0.01 end
  redis.call('ZADD', p .. 'ended', score, id)
  redis.call('HSET', p .. 'ended:size', id, bytes)
  local total = redis.call('INCRBY', p .. 'ended:bytes', bytes)
  while true do
    local oldest = redis.call('ZRANGE', p .. 'ended', 0, 0, 'WITHSCORES')
    if #oldest == 0 then break end
    local n = redis.call('ZCARD', p .. 'ended')
    if tonumber(oldest[2]) > now - retention and n <= maxRuns and total <= maxBytes then break end
    local old = oldest[1]
    local size = tonumber(redis.call('HGET', p .. 'ended:size', old) or '0')
    local oldkey = redis.call('HGET', p .. 'run:' .. old, 'key')
    redis.call('ZREM', p .. 'ended', old)
    redis.call('HDEL', p .. 'ended:size', old)
    total = redis.call('DECRBY', p .. 'ended:bytes', size)
    redis.call('DEL', p .. 'run:' .. old, p .. 'log:' .. old)
    if oldkey and oldkey ~= '' and redis.call('GET', p .. 'key:' .. oldkey) == old then
      redis.call('DEL', p .. 'key:' .. oldkey)
    end
  end
end
`

// createScript creates a live run, or finds the one its idempotency key
// names. KEYS: run, lease. ARGV: prefix, id, key, owner, now, live TTL ms,
// lease ms. It returns {1, id} for a new run, {0, id} for the one kept.
var createScript = goredis.NewScript(`
local p, id, key = ARGV[1], ARGV[2], ARGV[3]
if key ~= '' then
  local kk = p .. 'key:' .. key
  local old = redis.call('GET', kk)
  if old and redis.call('EXISTS', p .. 'run:' .. old) == 1 then return {0, old} end
  redis.call('SET', kk, id, 'PX', ARGV[6])
end
redis.call('HSET', KEYS[1], 'state', 'live', 'next', 0, 'bytes', 0, 'owner', ARGV[4], 'key', key, 'created', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[7])
return {1, id}
`)

// appendScript appends a batch of events numbered from first on to a live
// run. KEYS: run, log. ARGV: prefix, id, first, now, live TTL ms,
// retention ms, max runs, max bytes, the state a terminal event in the
// batch ends the run in (or empty), the batch's bytes, then the events. It
// returns {3, last} once appended, {1, state} for a run that has ended,
// {0} for one that is gone, {2, next} if first is not the next number.
var appendScript = goredis.NewScript(finishLua + `
local p, id = ARGV[1], ARGV[2]
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {0} end
if state ~= 'live' then return {1, state} end
local first = tonumber(ARGV[3])
local nxt = tonumber(redis.call('HGET', KEYS[1], 'next'))
if first ~= nxt then return {2, nxt} end
for i = 11, #ARGV do
  redis.call('XADD', KEYS[2], '0-' .. (first + i - 10), 'e', ARGV[i])
end
local last = first + #ARGV - 11
redis.call('HSET', KEYS[1], 'next', last + 1)
redis.call('HINCRBY', KEYS[1], 'bytes', ARGV[10])
if first == 0 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
if ARGV[9] ~= '' then
  finish(p, id, ARGV[9], tonumber(ARGV[4]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]))
end
redis.call('PUBLISH', p .. 'events:' .. id, last)
return {3, last}
`)

// endScript ends a live run with one last event: canceled (mode cancel),
// or an error when its owner's lease has lapsed (mode orphan). KEYS: run,
// log. ARGV: prefix, id, now, retention ms, max runs, max bytes, mode, the
// event, the state it ends the run in. It returns {3, seq} when it ended
// the run, {1, state} for one that had ended, {0} for one that is gone,
// {2} for an orphan check that found the lease alive.
var endScript = goredis.NewScript(finishLua + `
local p, id = ARGV[1], ARGV[2]
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {0} end
if state ~= 'live' then return {1, state} end
if ARGV[7] == 'orphan' and redis.call('EXISTS', p .. 'lease:' .. id) == 1 then return {2} end
local seq = tonumber(redis.call('HGET', KEYS[1], 'next'))
redis.call('XADD', KEYS[2], '0-' .. (seq + 1), 'e', ARGV[8])
redis.call('HSET', KEYS[1], 'next', seq + 1)
redis.call('HINCRBY', KEYS[1], 'bytes', #ARGV[8])
finish(p, id, ARGV[9], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))
redis.call('PUBLISH', p .. 'events:' .. id, seq)
redis.call('PUBLISH', p .. 'stop', id)
return {3, seq}
`)

// readScript reads a run's state and the events after a stream id, in one
// step, so that a state that says ended comes with every event. KEYS: run,
// log. ARGV: prefix, id, the range's start, count. It returns {0} for a run
// that is gone, else {1, state, next, lease alive (1 or 0), entries}.
var readScript = goredis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'state', 'next')
if not m[1] then return {0} end
local lease = 1
if m[1] == 'live' then lease = redis.call('EXISTS', ARGV[1] .. 'lease:' .. ARGV[2]) end
local entries = redis.call('XRANGE', KEYS[2], ARGV[3], '+', 'COUNT', ARGV[4])
return {1, m[1], tonumber(m[2]), lease, entries}
`)

var scripts = []*goredis.Script{createScript, appendScript, endScript, readScript}
