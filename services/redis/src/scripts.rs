//! Lua scripts. Each touches the keys of exactly one room (one cluster slot) or exactly one
//! global key; none needs all rooms to share a slot.

use crate::awareness::LUA_MS_PATTERN;
use redis::Script;
use std::sync::LazyLock;

/// Appends updates to a room's log and publishes each to the room's channel, atomically.
///
/// KEYS: log, meta, snap, generation. ARGV: node, ms, channel, publish command, the deletion
/// generation the writer's room was loaded at, the largest update published inline (a larger
/// one is published by reference, without its bytes: receivers read it from the log, and no
/// subscriber's output buffer ever has to hold it), then the updates, one entry each, in order.
/// Returns `{created (0|1), entries since the snapshot, log bytes since the snapshot, {ids}}`,
/// or nil (and writes nothing) when the room was deleted since: a node that missed the
/// deletion can never write into the room that came after it.
///
/// Five calls for one update (`GET`, `HMGET`, `XADD`, `HSET`, publish), one `XADD` and one
/// publish more per further update. The meta hash keeps `last` (the id of the last entry),
/// `bytes` and `n` (log bytes and entries not yet in the snapshot; the compactor subtracts
/// what it merged): no `XLEN`, no `EXISTS`. No `last` means no entry since the log was
/// created (or deleted after a full compaction): then the log's first id is kept above the
/// snapshot's `upto` even if the server clock went backwards, so no new entry can ever look
/// "already covered by the snapshot".
pub static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if (redis.call('GET', KEYS[4]) or '0') ~= ARGV[5] then
  return false
end
local m = redis.call('HMGET', KEYS[2], 'last', 'bytes', 'n')
local prev, bytes, n, created = m[1], tonumber(m[2] or '0') or 0, tonumber(m[3] or '0') or 0, 0
local id = '*'
if not prev then
  created, prev = 1, '0-0'
  local upto = redis.call('HGET', KEYS[3], 'upto')
  if upto then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local ums, useq = string.match(upto, '^(%d+)-(%d+)$')
    if ums and tonumber(ums) >= now then
      id = ums .. '-' .. tostring(tonumber(useq) + 1)
    end
  end
end
local limit = tonumber(ARGV[6])
local ids = {}
for i = 7, #ARGV do
  local update = ARGV[i]
  id = redis.call('XADD', KEYS[1], id, 'u', update, 'n', ARGV[1], 't', ARGV[2])
  local header = prev .. ' ' .. id .. ' ' .. ARGV[1] .. ' ' .. ARGV[2] .. '\n'
  if string.len(update) > limit then
    redis.call(ARGV[4], ARGV[3], 'r' .. header)
  else
    redis.call(ARGV[4], ARGV[3], 'u' .. header .. update)
  end
  bytes = bytes + string.len(update)
  n = n + 1
  ids[#ids + 1] = id
  prev, id = id, '*'
end
redis.call('HSET', KEYS[2], 'last', prev, 'bytes', string.format('%d', bytes), 'n', string.format('%d', n))
return {created, n, bytes, ids}
"#,
    )
});

/// Reads a room's snapshot and the first page of log entries after it, atomically.
///
/// KEYS: snap, log, generation. ARGV: page size. Returns
/// `{doc or '', upto, epoch, entries, deletion generation}`.
pub static LOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local s = redis.call('HMGET', KEYS[1], 'doc', 'upto', 'epoch')
local upto = s[2] or '0-0'
local entries = redis.call('XRANGE', KEYS[2], '(' .. upto, '+', 'COUNT', ARGV[1])
return {s[1] or '', upto, s[3] or '0', entries, redis.call('GET', KEYS[3]) or '0'}
"#,
    )
});

/// Stores awareness states of a room and publishes the change.
///
/// KEYS: awareness hash. ARGV: channel, publish command, message ('' publishes nothing: a
/// refresh of stored states only), ttl ms, stale-before ms, then pairs of (client id, an
/// [`AwarenessValue`](crate::awareness::AwarenessValue) or '' to delete).
/// Stale fields are pruned when the hash grows (their `ms` matched with
/// [`LUA_MS_PATTERN`]): 64 random fields per call, so one call costs the same however large
/// the room's hash is. The key expires when unused.
pub static AWARENESS: LazyLock<Script> = LazyLock::new(|| Script::new(&AWARENESS_SOURCE));

/// The source of [`AWARENESS`].
pub(crate) static AWARENESS_SOURCE: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"
for i = 6, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
if redis.call('HLEN', KEYS[1]) > 64 then
  local sample = redis.call('HRANDFIELD', KEYS[1], 64, 'WITHVALUES')
  local stale = tonumber(ARGV[5])
  for i = 1, #sample, 2 do
    local ms = string.match(sample[i + 1], '{LUA_MS_PATTERN}')
    if not ms or tonumber(ms) < stale then
      redis.call('HDEL', KEYS[1], sample[i])
    end
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
if ARGV[3] ~= '' then
  redis.call(ARGV[2], ARGV[1], ARGV[3])
end
return 1
"#
    )
});

/// Claims a room for compaction: takes the lease and records the claim, returning the
/// previous, unreleased claim (a replica that died mid-task) if there was one.
///
/// KEYS: lease, meta. ARGV: token, lease ms. Returns `{acquired (0|1), previous claim or ''}`.
pub static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0, ''}
end
local previous = redis.call('HGET', KEYS[2], 'claim') or ''
redis.call('HSET', KEYS[2], 'claim', ARGV[1])
return {1, previous}
"#,
    )
});

/// Extends a lease still held by `token`. KEYS: lease. ARGV: token, lease ms. Returns 0|1.
pub static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#,
    )
});

/// Writes a snapshot only if the writer still holds the lease and nobody wrote a snapshot
/// since it read the old one (fencing by epoch).
///
/// KEYS: snap, lease, meta. ARGV: token, doc, upto, epoch read, bytes merged, entries merged
/// (the log counters [`APPEND`] keeps in meta go down by what the snapshot now holds).
/// Returns `ok`, `lease_lost` or `stale`.
pub static WRITE_SNAPSHOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 'lease_lost'
end
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if epoch ~= tonumber(ARGV[4]) then
  return 'stale'
end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'upto', ARGV[3], 'epoch', epoch + 1)
local c = redis.call('HMGET', KEYS[3], 'bytes', 'n')
local bytes = math.max((tonumber(c[1] or '0') or 0) - tonumber(ARGV[5]), 0)
local n = math.max((tonumber(c[2] or '0') or 0) - tonumber(ARGV[6] or '0'), 0)
redis.call('HSET', KEYS[3], 'bytes', string.format('%d', bytes), 'n', string.format('%d', n))
return 'ok'
"#,
    )
});

/// Releases a lease held by `token` and clears the claim. KEYS: lease, meta. ARGV: token.
pub static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
if redis.call('HGET', KEYS[2], 'claim') == ARGV[1] then
  redis.call('HDEL', KEYS[2], 'claim')
end
return 1
"#,
    )
});

/// Deletes a fully compacted, empty log (and its metadata, keeping any foreign claim).
/// KEYS: log, meta. Returns 1 when deleted, 0 when the log has entries again.
pub static CLEANUP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('XLEN', KEYS[1]) > 0 then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], 'last', 'bytes', 'n')
if redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[2])
end
return 1
"#,
    )
});

/// Deletes a room's state, moves it to the next deletion generation and tells every node
/// serving it (`d<node> <generation>\n`). KEYS: log, snap, meta, awareness, lease, callback,
/// generation. ARGV: channel, publish command, node. Returns the new generation.
pub static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
local generation = redis.call('INCR', KEYS[7])
redis.call(ARGV[2], ARGV[1], 'd' .. ARGV[3] .. ' ' .. generation .. '\n')
return generation
"#,
    )
});

/// Claims a room's HTTP callback for the state up to a log position. KEYS: callback key.
/// ARGV: position `ms-seq`, window ms. Returns 0 (send), -1 (a callback covering this
/// position was sent in the window) or the ms until the window of an older one ends.
pub static CLAIM_CALLBACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local current = redis.call('GET', KEYS[1])
if current then
  local cm, cs = string.match(current, '^(%d+)-(%d+)$')
  local pm, ps = string.match(ARGV[1], '^(%d+)-(%d+)$')
  cm, cs, pm, ps = tonumber(cm), tonumber(cs), tonumber(pm), tonumber(ps)
  if cm and pm and (cm > pm or (cm == pm and cs >= ps)) then
    return -1
  end
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then
    return ttl
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 0
"#,
    )
});

/// Reads what a node missed after `last`, atomically with the snapshot: when a compaction
/// trimmed entries past `last`, the snapshot (which covers them) comes back too.
///
/// KEYS: snap, log. ARGV: last id, page size. Returns `{doc or '', upto, entries}`; `doc` is
/// non-empty only when the snapshot covers entries after `last`, and `entries` then start
/// after `upto`.
pub static CATCH_UP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local upto = redis.call('HGET', KEYS[1], 'upto') or '0-0'
local um, us = string.match(upto, '^(%d+)-(%d+)$')
local lm, ls = string.match(ARGV[1], '^(%d+)-(%d+)$')
um, us, lm, ls = tonumber(um), tonumber(us), tonumber(lm), tonumber(ls)
if um and lm and (um > lm or (um == lm and us > ls)) then
  local doc = redis.call('HGET', KEYS[1], 'doc') or ''
  return {doc, upto, redis.call('XRANGE', KEYS[2], '(' .. upto, '+', 'COUNT', ARGV[2])}
end
return {'', upto, redis.call('XRANGE', KEYS[2], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])}
"#,
    )
});
