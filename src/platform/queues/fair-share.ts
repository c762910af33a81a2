import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { AppConfig } from '../config/app-config.js';
import { FAST_REDIS } from '../redis/redis.connections.js';

/*
 * Round-robin admission of builds across groups (organisations), in Redis, for any number of worker processes.
 * Keys, all under QUEUE_PREFIX (hash-tagged, so they share one Redis Cluster slot with the BullMQ queue):
 *   fair:groups   ZSET  group -> its turn (a counter): among groups running as many builds, the one that has
 *                       waited longest comes first
 *   fair:q:<g>    LIST  the group's operations, first come first served
 *   fair:queued   HASH  operation -> group, while it waits here
 *   fair:running  HASH  operation -> group, once admitted and until its build ends for good
 *   fair:active   HASH  group -> how many of its builds are admitted (the per-group cap counts these)
 *   fair:token    HASH  operation -> the token of its admission, which its job carries: only a release with
 *                       that token frees the slot, so the end of an earlier attempt cannot free a later one's
 *   fair:clock    the counter turns and tokens are drawn from (monotonic across processes, unlike their clocks)
 */

// ARGV[4] '1' puts the operation first in its group's line instead of last.
const SUBMIT = `
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 or redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return 0 end
redis.call(ARGV[4] == '1' and 'LPUSH' or 'RPUSH', ARGV[3] .. ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[4]), ARGV[2]) end
return 1`;

// Lua shared by the scripts below, on the operation ARGV[1], given the KEYS that hold each part.
/** Whether the operation's BullMQ job (its hash) exists and is not in a finished set: it is queued or running. */
const jobQueued = (job: string, completed: string, failed: string) =>
  `redis.call('EXISTS', ${job}) == 1 and not redis.call('ZSCORE', ${completed}, ARGV[1]) and not redis.call('ZSCORE', ${failed}, ARGV[1])`;
/** The operation, admitted in `group`, leaves `running` and its `token`, and its group's `active` count drops. */
const freeSlot = (running: string, active: string, token: string) => `redis.call('HDEL', ${running}, ARGV[1])
redis.call('HDEL', ${token}, ARGV[1])
if redis.call('HINCRBY', ${active}, group, -1) <= 0 then redis.call('HDEL', ${active}, group) end`;

// KEYS: groups, queued, running, active, clock, token. Answers operation, token, operation, token...
// Takes up to ARGV[1] operations, one at a time from the group with the fewest builds admitted, under the cap
// (ARGV[2], 0 for none); among equals, the one that has waited longest. A group served goes to the back of the
// round. Fewest first is what bounds the wait of a group that joins behind a long backlog: whatever the turns
// say, its first build goes before the backlog's next one, so it waits only for builds already running.
const CLAIM = `
local wanted, cap, queuePrefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local claimed = {}
while #claimed < 2 * wanted do
  local best, fewest = nil, nil
  for _, group in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local active = tonumber(redis.call('HGET', KEYS[4], group) or '0')
    if (cap == 0 or active < cap) and (fewest == nil or active < fewest) then
      best, fewest = group, active
      if active == 0 then break end
    end
  end
  if not best then break end
  local operation = redis.call('LPOP', queuePrefix .. best)
  if operation then
    redis.call('HDEL', KEYS[2], operation)
    -- Counted once, should it somehow be admitted already.
    if redis.call('HSET', KEYS[3], operation, best) == 1 then redis.call('HINCRBY', KEYS[4], best, 1) end
    local token = tostring(redis.call('INCR', KEYS[5]))
    redis.call('HSET', KEYS[6], operation, token)
    claimed[#claimed + 1] = operation
    claimed[#claimed + 1] = token
  end
  if redis.call('LLEN', queuePrefix .. best) == 0 then redis.call('ZREM', KEYS[1], best)
  else redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[5]), best) end
end
return claimed`;

// KEYS: running, active, token, and the operation's BullMQ job hash and finished sets; ARGV: operation, token.
// KEYS: running, active, token, the job's hash and finished sets, groups, clock; ARGV: operation, token.
// Frees the slot of an operation whose build ended. With a token (a worker's release), only the admission that
// token names: a release from an earlier attempt, after a revive renewed the admission, frees nothing. Without
// one (the reconciler, or a job queued before tokens), only while the job is finished or gone. A group with
// more in line goes to the back of the round: among groups running as many builds, one that joined while this
// build ran comes first, whether the next claim lands before this release (the fewest-builds rule decides)
// or after it (this does). Without it, a backlog's next build could go before a group that joined behind the
// build already running, whenever the release won that race.
const RELEASE = `
local group = redis.call('HGET', KEYS[1], ARGV[1])
if not group then return 0 end
if ARGV[2] ~= '' then
  if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
elseif ${jobQueued('KEYS[4]', 'KEYS[5]', 'KEYS[6]')} then
  return 0
end
${freeSlot('KEYS[1]', 'KEYS[2]', 'KEYS[3]')}
if redis.call('ZSCORE', KEYS[7], group) then redis.call('ZADD', KEYS[7], redis.call('INCR', KEYS[8]), group) end
return 1`;

// KEYS: running, token, clock. A new token for an operation still admitted (a revive queues its job again under
// the slot it holds): the attempt that ended, whose release may still be on its way, no longer names it.
// ARGV[2] '1' keeps the current token when there is one: a job that was never added (or that Redis lost) has
// no attempt whose release could be on its way, and the worker that claimed it may be adding it right now
// with that token.
const RENEW = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return false end
if ARGV[2] == '1' then
  local current = redis.call('HGET', KEYS[2], ARGV[1])
  if current then return current end
end
local token = tostring(redis.call('INCR', KEYS[3]))
redis.call('HSET', KEYS[2], ARGV[1], token)
return token`;

// KEYS: running, token. ARGV: operation, the token this process set, the token the operation's job carries.
// Two processes queued the same job under two tokens (two revives at once): the job keeps the first one's, so
// the slot takes it too, unless it has moved on since (released, or renewed again).
const ADOPT = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1`;

// KEYS: groups, queued, running, active, token, clock, and the operation's BullMQ job hash and finished sets;
// ARGV: operation, token, queue prefix. An admission whose job could not be queued is undone: the operation
// goes back first in its group's line and the slot is free. Not while its job is queued after all (its add went
// through, or another process added it meanwhile): a finished job does not count, a revive retries it.
const UNCLAIM = `
local group = redis.call('HGET', KEYS[3], ARGV[1])
if not group or redis.call('HGET', KEYS[5], ARGV[1]) ~= ARGV[2] then return 0 end
if ${jobQueued('KEYS[7]', 'KEYS[8]', 'KEYS[9]')} then return 0 end
${freeSlot('KEYS[3]', 'KEYS[4]', 'KEYS[5]')}
redis.call('LPUSH', ARGV[3] .. group, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], group)
if not redis.call('ZSCORE', KEYS[1], group) then redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[6]), group) end
return 1`;

const FORGET = `
local group = redis.call('HGET', KEYS[2], ARGV[1])
if group then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('LREM', ARGV[2] .. group, 0, ARGV[1])
  if redis.call('LLEN', ARGV[2] .. group) == 0 then redis.call('ZREM', KEYS[1], group) end
end
local running = redis.call('HGET', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
if running then
  redis.call('HDEL', KEYS[3], ARGV[1])
  if redis.call('HINCRBY', KEYS[4], running, -1) <= 0 then redis.call('HDEL', KEYS[4], running) end
end
return 1`;

type FairRedis = Redis & {
  fairSubmit(groups: string, queued: string, running: string, clock: string, operation: string, group: string, queuePrefix: string, first: string): Promise<number>;
  fairClaim(groups: string, queued: string, running: string, active: string, clock: string, token: string, wanted: string, cap: string, queuePrefix: string): Promise<string[]>;
  fairRelease(
    running: string, active: string, token: string, job: string, completed: string, failed: string, groups: string, clock: string,
    operation: string, admission: string,
  ): Promise<number>;
  fairRenew(running: string, token: string, clock: string, operation: string, keep: string): Promise<string | null>;
  fairAdopt(running: string, token: string, operation: string, ours: string, theirs: string): Promise<number>;
  fairUnclaim(
    groups: string, queued: string, running: string, active: string, token: string, clock: string, job: string, completed: string, failed: string,
    operation: string, admission: string, queuePrefix: string,
  ): Promise<number>;
  fairForget(groups: string, queued: string, running: string, active: string, token: string, operation: string, queuePrefix: string): Promise<number>;
};

export type FairState = 'queued' | 'running' | 'unknown';

/** An operation admitted, and the token of that admission, which its job carries to release the slot. */
export interface Admission {
  operationId: string;
  token: string;
}

/** The Redis keys of an operation's BullMQ job and of the sets of finished jobs (in the same hash slot). */
export interface JobKeys {
  job: string;
  completed: string;
  failed: string;
}

/**
 * Fair admission of packaging builds: operations wait here per organisation, and a worker with a free slot
 * claims the next one from the organisation that runs the fewest builds (below ORG_MAX_ACTIVE_BUILDS; among
 * equals, the one that has waited longest), before putting its BullMQ job on the queue. So one organisation's backlog delays
 * another's build by at most the builds already running, however many workers there are; BullMQ keeps doing
 * the rest (locks, retries, stalled jobs, hand-backs).
 */
@Injectable()
export class FairShare {
  private readonly redis: FairRedis;
  private readonly keys: { groups: string; queued: string; running: string; active: string; token: string; clock: string; queuePrefix: string };

  constructor(@Inject(FAST_REDIS) redis: Redis, config: AppConfig) {
    const prefix = `${config.QUEUE_PREFIX}:fair`;
    this.keys = {
      groups: `${prefix}:groups`,
      queued: `${prefix}:queued`,
      running: `${prefix}:running`,
      active: `${prefix}:active`,
      token: `${prefix}:token`,
      clock: `${prefix}:clock`,
      queuePrefix: `${prefix}:q:`,
    };
    for (const [name, numberOfKeys, lua] of [
      ['fairSubmit', 4, SUBMIT],
      ['fairClaim', 6, CLAIM],
      ['fairRelease', 8, RELEASE],
      ['fairRenew', 3, RENEW],
      ['fairAdopt', 2, ADOPT],
      ['fairUnclaim', 9, UNCLAIM],
      ['fairForget', 5, FORGET],
    ] as const) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
    }
    this.redis = redis as FairRedis;
  }

  /**
   * Puts an operation at the end of its group's line, or first in it (an operation put back after it was lost
   * or stranded); false when it is already waiting or admitted.
   */
  async submit(operationId: string, group: string, { first = false } = {}): Promise<boolean> {
    const { groups, queued, running, clock, queuePrefix } = this.keys;
    return (await this.redis.fairSubmit(groups, queued, running, clock, operationId, group, queuePrefix, first ? '1' : '0')) === 1;
  }

  /** Admits up to `wanted` operations, fairly; answers them with their admissions' tokens. */
  async claim(wanted: number, cap: number): Promise<Admission[]> {
    const { groups, queued, running, active, clock, token, queuePrefix } = this.keys;
    const flat = await this.redis.fairClaim(groups, queued, running, active, clock, token, String(wanted), String(cap), queuePrefix);
    const admissions: Admission[] = [];
    for (let i = 0; i < flat.length; i += 2) admissions.push({ operationId: flat[i], token: flat[i + 1] });
    return admissions;
  }

  /**
   * An admitted build ended for good (ready, failed, cancelled, skipped): its group's slot is free. With the
   * token its job carried, only if that admission is still the operation's; without one, only while its job
   * is finished or gone (its keys say). True when the slot was freed.
   */
  async release(operationId: string, job: JobKeys, token?: string): Promise<boolean> {
    const { running, active } = this.keys;
    const { groups, clock } = this.keys;
    return (await this.redis.fairRelease(running, active, this.keys.token, job.job, job.completed, job.failed, groups, clock, operationId, token ?? '')) === 1;
  }

  /**
   * A fresh token for an operation still admitted; undefined when it no longer is (its slot was released).
   * With `keep`, its current token when it has one (its job was never added, or Redis lost it).
   */
  async renew(operationId: string, { keep = false } = {}): Promise<string | undefined> {
    return (await this.redis.fairRenew(this.keys.running, this.keys.token, this.keys.clock, operationId, keep ? '1' : '0')) ?? undefined;
  }

  /**
   * The operation's job carries `theirs`, not the token `ours` this process just set: the slot takes the job's,
   * if it still holds ours, so that the job's release frees it. True when it did.
   */
  async adopt(operationId: string, ours: string, theirs: string): Promise<boolean> {
    return (await this.redis.fairAdopt(this.keys.running, this.keys.token, operationId, ours, theirs)) === 1;
  }

  /**
   * Undoes an admission whose job could not be queued (Redis blinked, the add timed out): the operation goes
   * back first in its group's line, its slot freed. Only with the admission's token, and only while its job
   * (`job`) is not queued. True when it did.
   */
  async unclaim(operationId: string, token: string, job: JobKeys): Promise<boolean> {
    const { groups, queued, running, active, clock, queuePrefix } = this.keys;
    const unclaimed = await this.redis.fairUnclaim(groups, queued, running, active, this.keys.token, clock, job.job, job.completed, job.failed, operationId, token, queuePrefix);
    return unclaimed === 1;
  }

  /** Takes an operation out, waiting or admitted (a cancel). */
  async forget(operationId: string): Promise<void> {
    const { groups, queued, running, active, token, queuePrefix } = this.keys;
    await this.redis.fairForget(groups, queued, running, active, token, operationId, queuePrefix);
  }

  async stateOf(operationId: string): Promise<FairState> {
    const [queued, running] = await Promise.all([this.redis.hexists(this.keys.queued, operationId), this.redis.hexists(this.keys.running, operationId)]);
    return queued ? 'queued' : running ? 'running' : 'unknown';
  }

  /** Operations waiting for a slot, all groups together. */
  backlog(): Promise<number> {
    return this.redis.hlen(this.keys.queued);
  }

  /** The admitted operations, for the reconciler to release those whose builds ended unseen. */
  async admitted(): Promise<string[]> {
    return this.redis.hkeys(this.keys.running);
  }
}
