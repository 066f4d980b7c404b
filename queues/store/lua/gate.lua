-- KEYS: none of its own: a library, not a script. The loader (queues/store/scripts.py)
--       prepends it to the scripts that move a job of a flow-controlled queue. Every
--       key is derived from the queue's key base (its hash tag included).
-- ARGV: none; each function takes the queue's key base (and now, in ms).
-- Returns: gate_pump returns (dispatched, when to pump again or -1); gate_refuses a
--          reason or nil; the others nothing.
--
-- Flow control of one queue: a rate limit (at most rate_max starts in any
-- rate_ms), a global concurrency (at most conc jobs waiting or active), and per
-- group (a job's 'group': a tenant, a customer) a concurrency and a rate limit.
-- The limits live in the queue's meta hash (queues.store.gate writes them), so a
-- change applies to the next transition on every worker.
--
-- On a queue with limits ('gate' = 1 in meta) a runnable job is not pushed to the
-- broker but held: state 'limited', its message in its record (as a delayed job's),
-- in the queue's 'limited' index and in its group's held set, ordered by priority
-- then enqueue order. Groups with held jobs form a ring; gate_pump turns it, one
-- job per group per turn (round-robin: a tenant's backlog cannot starve another),
-- and dispatches while the limits leave room: the job turns 'waiting' and its
-- message is pushed as enqueue.lua would have. The enqueue, promote and finish
-- scripts pump; so does every worker's 'gate' duty, at the moment a rate window
-- reopens and at least once a second.
--
-- Room counts dispatched jobs not yet started as taken, so a dispatched job's
-- claim finds its slot. A message that reaches a worker another way (a recovered
-- or released job) is checked at claim by gate_refuses, and a refused job is held
-- again in its place (gate_return.lua): the limits hold at claim whatever the path.
--
-- Keys per queue base: limited (index), gate:ring (list of groups), gate:q:<group>
-- (held, zset), gate:pend:<group> / gate:act:<group> (dispatched / active job ids,
-- sets, grouped jobs only), gate:starts[:<group>] (start times, zsets), gate:why
-- (group, or '*' for the queue, -> the limit that holds it back). '' is the group
-- of jobs without one; group limits do not apply to it.
local GATE_PRIORITY_STEP = 1e13  -- a held job's score: priority * step + enqueue sequence

local function gate_limits(base)
  local m = redis.call('HMGET', base .. 'meta', 'gate', 'paused', 'rate_max', 'rate_ms',
                       'conc', 'group_conc', 'group_rate_max', 'group_rate_ms')
  return {on = m[1] == '1', paused = m[2] == '1', rate_max = tonumber(m[3]),
          rate_ms = tonumber(m[4]), conc = tonumber(m[5]), gconc = tonumber(m[6]),
          grate_max = tonumber(m[7]), grate_ms = tonumber(m[8])}
end

-- Starts still inside the window that ends now (older ones are dropped).
local function gate_window(log, now, ms)
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - ms)
  return redis.call('ZCARD', log)
end

-- When the oldest start in the window leaves it (-1: the window is empty).
local function gate_reopens(log, ms)
  local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')[2]
  return oldest and tonumber(oldest) + ms or -1
end

local function gate_order(jkey, base, priority)
  local seq = redis.call('HGET', jkey, 'gate_seq')
  if not seq then seq = redis.call('HINCRBY', base .. 'meta', 'gate_seq', 1) end
  return (tonumber(priority) or 0) * GATE_PRIORITY_STEP + tonumber(seq), seq
end

-- Hold a runnable job: its message waits in its record until gate_pump sends it.
-- A job held again keeps its first place (its gate_seq).
local function gate_insert(base, id, group, priority, msg, bkey)
  local jkey = base .. 'job:' .. id
  local score, seq = gate_order(jkey, base, priority)
  local held = base .. 'gate:q:' .. group
  if redis.call('ZADD', held, score, id) == 1 and redis.call('ZCARD', held) == 1 then
    redis.call('RPUSH', base .. 'gate:ring', group)
  end
  redis.call('ZADD', base .. 'limited', score, id)
  redis.call('HSET', jkey, 'state', 'limited', 'gate_seq', seq, 'msg', msg, 'broker_key', bkey)
end

-- A held job leaves the gate other than by dispatch (cancelled).
local function gate_unhold(base, id, group)
  local held = base .. 'gate:q:' .. group
  redis.call('ZREM', held, id)
  redis.call('ZREM', base .. 'limited', id)
  if redis.call('ZCARD', held) == 0 then
    redis.call('LREM', base .. 'gate:ring', 0, group)
    redis.call('HDEL', base .. 'gate:why', group)
  end
end

-- A job of ``group`` stopped being waiting or active (finished, retried, recovered,
-- cancelled): its slot in the group's counts is free.
local function gate_left(base, id, group)
  if group and group ~= '' then
    redis.call('SREM', base .. 'gate:act:' .. group, id)
    redis.call('SREM', base .. 'gate:pend:' .. group, id)
  end
end

-- Drop members of a group's pending or active set whose record says otherwise
-- (a path that forgot them); only read when the set looks full.
local function gate_repair(base, set, state)
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    if redis.call('HGET', base .. 'job:' .. id, 'state') ~= state then
      redis.call('SREM', set, id)
    end
  end
end

local function gate_group_load(base, group)
  return redis.call('SCARD', base .. 'gate:pend:' .. group)
       + redis.call('SCARD', base .. 'gate:act:' .. group)
end

-- Whether ``group`` may have one more job dispatched: true, or false, why, reopening time.
local function gate_group_open(base, L, group, now)
  if group == '' then return true end
  if L.gconc and gate_group_load(base, group) >= L.gconc then
    gate_repair(base, base .. 'gate:pend:' .. group, 'waiting')
    gate_repair(base, base .. 'gate:act:' .. group, 'active')
    if gate_group_load(base, group) >= L.gconc then return false, 'concurrency_limited', -1 end
  end
  if L.grate_max and L.grate_ms then
    local log = base .. 'gate:starts:' .. group
    if gate_window(log, now, L.grate_ms) + redis.call('SCARD', base .. 'gate:pend:' .. group)
        >= L.grate_max then
      return false, 'rate_limited', gate_reopens(log, L.grate_ms)
    end
  end
  return true
end

-- How many more jobs the queue's own limits let out now: room, why not, and when the
-- rate window next frees a slot (-1: no start in it, or no rate limit).
local function gate_queue_room(base, L, now)
  local room, why, wake = math.huge, nil, -1
  if not (L.conc or (L.rate_max and L.rate_ms)) then return room, why, wake end
  local waiting = redis.call('ZCARD', base .. 'waiting')
  if L.conc then
    room = L.conc - waiting - redis.call('ZCARD', base .. 'active')
    if room <= 0 then why = 'concurrency_limited' end
  end
  if L.rate_max and L.rate_ms then
    local log = base .. 'gate:starts'
    local left = L.rate_max - gate_window(log, now, L.rate_ms) - waiting
    if left < room then room = left end
    if left <= 0 then why = why or 'rate_limited' end
    wake = gate_reopens(log, L.rate_ms)
  end
  return room, why, wake
end

local function gate_sooner(a, b)
  if a < 0 then return b end
  if b < 0 then return a end
  return math.min(a, b)
end

local function gate_dispatch(base, id, group, now)
  local jkey = base .. 'job:' .. id
  local rec = redis.call('HMGET', jkey, 'msg', 'broker_key')
  redis.call('ZREM', base .. 'gate:q:' .. group, id)
  redis.call('ZREM', base .. 'limited', id)
  redis.call('HSET', jkey, 'state', 'waiting')
  redis.call('HDEL', jkey, 'msg', 'broker_key')
  redis.call('ZADD', base .. 'waiting', now, id)
  -- without a message the job waits unseen, and the vanished-message sweep
  -- (queues.jobs.recovery) gives it one
  if rec[1] and rec[2] then redis.call('LPUSH', rec[2], rec[1]) end
  if group ~= '' then redis.call('SADD', base .. 'gate:pend:' .. group, id) end
end

-- Dispatch up to ``budget`` held jobs the limits let out, round-robin over the groups.
-- Returns how many, and when to pump again while jobs are held: now when the budget ran
-- out, else the soonest time a rate window frees a slot, or -1 (only an event can make
-- room: a job finishing, a limit raised; the workers' gate duty also pumps each second).
local function gate_pump(base, now, budget)
  local L = gate_limits(base)
  if L.paused then return 0, -1 end
  local ring, whys = base .. 'gate:ring', base .. 'gate:why'
  local groups = redis.call('LLEN', ring)
  if groups == 0 then return 0, -1 end
  local room, why, wake = gate_queue_room(base, L, now)
  if why then
    redis.call('HSET', whys, '*', why)
    return 0, wake
  end
  redis.call('HDEL', whys, '*')
  local limit = math.min(room, budget)
  local sent, blocked = 0, 0
  -- one full turn of the ring without a dispatch ends it (bounded per call)
  while sent < limit and groups > 0 and blocked < math.min(groups, 512) do
    local group = redis.call('LMOVE', ring, ring, 'LEFT', 'RIGHT')
    local open, gwhy, gwake = gate_group_open(base, L, group, now)
    local held = base .. 'gate:q:' .. group
    if open then
      local id = redis.call('ZRANGE', held, 0, 0)[1]
      if id then
        gate_dispatch(base, id, group, now)
        sent = sent + 1
      end
      blocked = 0
      redis.call('HDEL', whys, group)
    else
      redis.call('HSET', whys, group, gwhy)
      wake = gate_sooner(wake, gwake)
      blocked = blocked + 1
    end
    if redis.call('ZCARD', held) == 0 then  -- it is the ring's last item now
      redis.call('RPOP', ring)
      redis.call('HDEL', whys, group)
      groups = groups - 1
    end
  end
  if groups == 0 then return sent, -1 end
  if sent == budget then return sent, now end
  return sent, wake
end

-- Why a claim of a job of ``group`` must wait, or nil: checked on every claim of a
-- queue with limits, so they hold for messages that bypassed the gate too.
local function gate_refuses(base, L, group, now)
  if L.conc and redis.call('ZCARD', base .. 'active') >= L.conc then
    return 'concurrency_limited'
  end
  if L.rate_max and L.rate_ms and gate_window(base .. 'gate:starts', now, L.rate_ms)
      >= L.rate_max then
    return 'rate_limited'
  end
  if group ~= '' then
    if L.gconc and redis.call('SCARD', base .. 'gate:act:' .. group) >= L.gconc then
      return 'concurrency_limited'
    end
    if L.grate_max and L.grate_ms
        and gate_window(base .. 'gate:starts:' .. group, now, L.grate_ms) >= L.grate_max then
      return 'rate_limited'
    end
  end
  return nil
end

-- A claim of a queue with limits succeeded: count the start.
local function gate_started(base, L, id, group, now, attempt)
  local start = id .. ':' .. attempt
  if L.rate_max and L.rate_ms then
    redis.call('ZADD', base .. 'gate:starts', now, start)
    redis.call('PEXPIRE', base .. 'gate:starts', L.rate_ms)
  end
  if group ~= '' then
    redis.call('SREM', base .. 'gate:pend:' .. group, id)
    redis.call('SADD', base .. 'gate:act:' .. group, id)
    if L.grate_max and L.grate_ms then
      local log = base .. 'gate:starts:' .. group
      redis.call('ZADD', log, now, start)
      redis.call('PEXPIRE', log, L.grate_ms)
    end
  end
end
