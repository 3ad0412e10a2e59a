"""The Lua scripts of the job queue (:mod:`render_signal.notify.jobs`), each atomic
where a job's lease or schedule entry must change with what it checks."""

from __future__ import annotations

from typing import Final

__all__ = ["CLAIM", "CREATE_LEASED", "RECOVER", "RELEASE_DEAD", "STORE_FULL", "TAKE_OVER"]

# KEYS: schedule, leases, dead-letter stream. ARGV: now, lease end, limit, instance.
# Returns {schedule size, dead letters, {ids}}: the scheduler's gauges come with
# the claim that ends each tick instead of two more round trips per tick.
CLAIM: Final = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
  redis.call('HSET', KEYS[2], id, ARGV[4])
end
return {redis.call('ZCARD', KEYS[1]), redis.call('XLEN', KEYS[3]), ids}
"""

# Runs in one MULTI right after ``HSETNX jobs <id> <job JSON>``, so the job's
# ~100 KB (the email's bodies) never go through a script's arguments, which cost
# Redis twice what the same bytes cost as a plain command (issue 16). KEYS: jobs,
# schedule, leases, sent marker, final marker. ARGV: webhook-id, lease end,
# instance. -1: already sent or finished (a record the HSETNX just wrote goes
# again: a job is in the schedule for as long as it is in the hash); 0: a job
# exists; 1: created and leased.
CREATE_LEASED: Final = """
if redis.call('EXISTS', KEYS[4], KEYS[5]) > 0 then
  if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
    redis.call('HDEL', KEYS[1], ARGV[1])
  end
  return -1
end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 1
"""

# KEYS: jobs. ARGV: webhook-id, the light record's '"event_entry":"<id>"', the full
# record. Replaces the record only while it is that light one (a JSON string
# value cannot hold the needle's unescaped quotes, so only the field matches).
STORE_FULL: Final = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and string.find(current, ARGV[2], 1, true) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"""

# KEYS: schedule, leases. ARGV: webhook-id, lease end, instance. Leases a
# scheduled job unless some worker's lease on it is recorded.
TAKE_OVER: Final = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return 0
end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""

# KEYS: schedule, leases. ARGV: instance, due. Every job leased by this
# instance is due now; stale lease entries (job gone) are dropped.
RECOVER: Final = """
local entries = redis.call('HGETALL', KEYS[2])
local n = 0
for i = 1, #entries, 2 do
  local id, holder = entries[i], entries[i + 1]
  if holder == ARGV[1] then
    if redis.call('ZSCORE', KEYS[1], id) then
      redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
      n = n + 1
    end
    redis.call('HDEL', KEYS[2], id)
  end
end
return n
"""


# KEYS: schedule, leases. ARGV: liveness key prefix, due, this instance. Every
# job leased by a holder without a liveness key is due at once; its lease entry
# goes. Atomic with the EXISTS, so a holder that writes its key before leasing
# never loses a lease it is working on.
RELEASE_DEAD: Final = """
local entries = redis.call('HGETALL', KEYS[2])
local released = {}
for i = 1, #entries, 2 do
  local id, holder = entries[i], entries[i + 1]
  if holder ~= ARGV[3] and redis.call('EXISTS', ARGV[1] .. holder) == 0 then
    if redis.call('ZSCORE', KEYS[1], id) then
      redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
    end
    redis.call('HDEL', KEYS[2], id)
    released[#released + 1] = holder
  end
end
return released
"""
