/**
 * Join tokens (`drover token create --join`): per host or per batch, with an expiry (default 24 h,
 * like kubeadm's bootstrap tokens) and a number of uses (default 1). The token string a host is
 * given carries a bootstrap user (coordinator/bus/auth.ts `bootstrapUser`) that may only ask to
 * join on `drover.v1.join.<id>`; the coordinator keeps the record below in its Store (key
 * `join-tokens/<id>`), with the bootstrap user's public key but never its seed, so the record
 * alone joins nobody. When a token is used up, revoked or expires, its bootstrap key is revoked on
 * the bus (the account JWT is pushed), so even a copy of the token string cannot connect again.
 *
 * The decision whether a token may be used (`checkUse`) is pure; the store acts.
 */
import { randomBytes } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { encodeJoinToken } from '../protocol/join-token.js';
import { coordinatorError } from './errors.js';
import type { JOIN_ERRORS } from './join-errors.js';
import type { Store } from './store/types.js';

export const DEFAULT_JOIN_TOKEN_TTL_MS = 24 * 3600_000;
/** the longest a join token may live: a year (a token is a secret that joins a host) */
export const MAX_JOIN_TOKEN_TTL_MS = 366 * 24 * 3600_000;
export const MAX_JOIN_TOKEN_USES = 10_000;

/** What the Store keeps per token: never the token string or the bootstrap seed. */
export const JoinTokenRecord = Type.Object({
  id: Type.String({ pattern: '^[a-z0-9]{6,32}$' }),
  description: Type.String({ maxLength: 256 }),
  createdAt: Type.String(),
  expiresAt: Type.String(),
  uses: Type.Integer({ minimum: 1 }),
  used: Type.Integer({ minimum: 0 }),
  revokedAt: Type.Optional(Type.String()),
  /** the bootstrap user's nkey public key (revoked on the bus when the token ends) */
  bootstrapKey: Type.String({ pattern: '^U[A-Z2-7]{55}$' }),
  /** set once the bootstrap key has been revoked on the bus */
  busRevoked: Type.Optional(Type.Boolean()),
  /** the node ids that joined with it */
  nodes: Type.Optional(Type.Array(Type.String())),
  /** a host that joins with it waits Pending until an operator approves it (`drover approve`) */
  requireApproval: Type.Optional(Type.Boolean()),
});
export type JoinTokenRecord = Static<typeof JoinTokenRecord>;

export type JoinTokenState = 'active' | 'expired' | 'used' | 'revoked';

/** A token as `GET /v1/join-tokens` shows it: no secrets (there are none in the record but the key). */
export interface JoinTokenInfo {
  id: string;
  description: string;
  createdAt: string;
  expiresAt: string;
  uses: number;
  used: number;
  state: JoinTokenState;
  revokedAt?: string;
  nodes: string[];
  requireApproval: boolean;
}

const KEY = (id: string) => `join-tokens/${id}`;
const PREFIX = 'join-tokens/';

/** Pure: the token's state at `now` (ms). */
export function tokenState(t: JoinTokenRecord, now: number): JoinTokenState {
  if (t.revokedAt) return 'revoked';
  if (t.used >= t.uses) return 'used';
  if (Date.parse(t.expiresAt) <= now) return 'expired';
  return 'active';
}

export type UseVerdict = { ok: true } | { ok: false; code: keyof typeof JOIN_ERRORS; message: string };

/**
 * Pure: may `token` (undefined: no such token) admit one more host at `now`? The message says
 * what to do: every refusal needs a new token.
 */
export function checkUse(token: JoinTokenRecord | undefined, now: number, id = token?.id ?? '?'): UseVerdict {
  const again = 'create a new one with `drover token create --join`';
  if (!token)
    return {
      ok: false,
      code: 'DROVER_ERR_JOIN_TOKEN_UNKNOWN',
      message: `join token ${id} is unknown; ${again}`,
    };
  switch (tokenState(token, now)) {
    case 'revoked':
      return {
        ok: false,
        code: 'DROVER_ERR_JOIN_TOKEN_REVOKED',
        message: `join token ${id} was revoked at ${token.revokedAt}; ${again}`,
      };
    case 'used':
      return {
        ok: false,
        code: 'DROVER_ERR_JOIN_TOKEN_USED',
        message: `join token ${id} is used up (${token.used} of ${token.uses} use(s)); ${again}`,
      };
    case 'expired':
      return {
        ok: false,
        code: 'DROVER_ERR_JOIN_TOKEN_EXPIRED',
        message: `join token ${id} expired at ${token.expiresAt}; ${again}`,
      };
    default:
      return { ok: true };
  }
}

export function tokenInfo(t: JoinTokenRecord, now: number): JoinTokenInfo {
  return {
    id: t.id,
    description: t.description,
    createdAt: t.createdAt,
    expiresAt: t.expiresAt,
    uses: t.uses,
    used: t.used,
    state: tokenState(t, now),
    ...(t.revokedAt ? { revokedAt: t.revokedAt } : {}),
    nodes: [...(t.nodes ?? [])],
    requireApproval: t.requireApproval === true,
  };
}

/** What the store needs from the bus: a bootstrap user per token, and revoking one (pushed). */
export interface JoinTokenBus {
  bootstrapUser(
    tokenId: string,
    expiresAtMs: number,
  ): Promise<{ jwt: string; publicKey: string; seed: string }>;
  /** revokes the user key and pushes the account JWT to nats-server */
  revoke(userPublicKey: string): Promise<void>;
  /** the bus CA certificate (PEM) the token carries, when the bus uses TLS */
  caPem(): string | undefined;
}

export interface CreateJoinToken {
  ttlMs?: number;
  uses?: number;
  description?: string;
  /** hosts that join with it wait Pending for `drover approve` (default false: admitted at once) */
  requireApproval?: boolean;
}

/** A created token: its record's view plus the token string, returned once. */
export type CreatedJoinToken = JoinTokenInfo & { token: string };

export class JoinTokenStore {
  private readonly tokens = new Map<string, { rec: JoinTokenRecord; revision: number }>();
  private sweepTimer: { stop(): void } | undefined;

  private constructor(
    private readonly store: Store,
    private readonly bus: JoinTokenBus,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Loads every record; a malformed one stops start-up, naming its key. */
  static async open(o: {
    store: Store;
    bus: JoinTokenBus;
    clock: Clock;
    logger: Logger;
  }): Promise<JoinTokenStore> {
    const s = new JoinTokenStore(o.store, o.bus, o.clock, o.logger);
    for (const e of await o.store.list<unknown>(PREFIX)) {
      if (!Value.Check(JoinTokenRecord, e.value)) {
        const first = [...Value.Errors(JoinTokenRecord, e.value)][0];
        throw new Error(
          `join token record ${e.key}: ${first?.path || '/'}: ${first?.message ?? 'invalid'}; fix or delete it`,
        );
      }
      s.tokens.set(e.value.id, { rec: e.value, revision: e.revision });
    }
    return s;
  }

  /** Revokes the bootstrap keys of tokens that ended (expired) on a timer; `every` ms. */
  startSweep(everyMs = 60_000): void {
    this.sweepTimer ??= this.clock.every(everyMs, () => void this.sweep());
    void this.sweep();
  }

  stop(): void {
    this.sweepTimer?.stop();
    this.sweepTimer = undefined;
  }

  get(id: string): JoinTokenRecord | undefined {
    return this.tokens.get(id)?.rec;
  }

  list(): JoinTokenInfo[] {
    const now = this.clock.now();
    return [...this.tokens.values()]
      .map((t) => tokenInfo(t.rec, now))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async create(o: CreateJoinToken = {}): Promise<CreatedJoinToken> {
    const ttlMs = o.ttlMs ?? DEFAULT_JOIN_TOKEN_TTL_MS;
    const uses = o.uses ?? 1;
    const description = o.description ?? '';
    if (!Number.isFinite(ttlMs) || ttlMs < 1000 || ttlMs > MAX_JOIN_TOKEN_TTL_MS)
      throw coordinatorError('DROVER_ERR_BAD_REQUEST', 'ttl: must be between 1s and 366 days', {
        field: 'ttl',
      });
    if (!Number.isInteger(uses) || uses < 1 || uses > MAX_JOIN_TOKEN_USES)
      throw coordinatorError(
        'DROVER_ERR_BAD_REQUEST',
        `uses: must be an integer from 1 to ${MAX_JOIN_TOKEN_USES}`,
        {
          field: 'uses',
        },
      );
    if (description.length > 256 || /[\0-\x1f\x7f]/.test(description))
      throw coordinatorError(
        'DROVER_ERR_BAD_REQUEST',
        'description: at most 256 characters, no control characters',
        { field: 'description' },
      );
    const now = this.clock.now();
    const id = randomBytes(8).toString('hex');
    const expiresAtMs = now + ttlMs;
    const boot = await this.bus.bootstrapUser(id, expiresAtMs);
    const rec: JoinTokenRecord = {
      id,
      description,
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(expiresAtMs).toISOString(),
      uses,
      used: 0,
      bootstrapKey: boot.publicKey,
      nodes: [],
      ...(o.requireApproval ? { requireApproval: true } : {}),
    };
    const revision = await this.store.create(KEY(id), rec);
    this.tokens.set(id, { rec, revision });
    const ca = this.bus.caPem();
    const token = encodeJoinToken({
      id,
      jwt: boot.jwt,
      seed: boot.seed,
      expiresAt: rec.expiresAt,
      ...(ca ? { ca } : {}),
    });
    return { ...tokenInfo(rec, now), token };
  }

  /** Pure check against the stored record (see `checkUse`). */
  check(id: string): UseVerdict {
    return checkUse(this.get(id), this.clock.now(), id);
  }

  /**
   * Counts one use by `nodeId`. Throws the refusal when the token may not be used (checked again
   * here, under the revision). When the uses run out, `revokeEnded(id)` cuts the bootstrap user
   * off the bus — after the join reply went out (revoking first would disconnect the host before
   * it reads its credentials).
   */
  async use(id: string, nodeId: string): Promise<JoinTokenInfo> {
    await this.change(id, (cur) => {
      const v = checkUse(cur, this.clock.now(), id);
      if (!v.ok) throw coordinatorError(v.code, v.message, { tokenId: id });
      return { ...cur!, used: cur!.used + 1, nodes: [...(cur!.nodes ?? []), nodeId].slice(-100) };
    });
    return tokenInfo(this.get(id)!, this.clock.now());
  }

  /** Revokes the bootstrap key of a token that ended (used up, expired, revoked); no-op otherwise. */
  async revokeEnded(id: string): Promise<void> {
    const rec = this.get(id);
    if (rec && tokenState(rec, this.clock.now()) !== 'active') await this.revokeOnBus(rec);
  }

  /** Revokes a token (by id): it joins nobody from now on, and its bootstrap user is cut off. */
  async revoke(id: string): Promise<JoinTokenInfo> {
    const cur = this.tokens.get(id);
    if (!cur)
      throw coordinatorError(
        'DROVER_ERR_TOKEN_NOT_FOUND',
        `no join token with id ${JSON.stringify(id)}; list them with \`drover get tokens\``,
        { id },
      );
    if (!cur.rec.revokedAt)
      await this.change(id, (r) =>
        r && !r.revokedAt ? { ...r, revokedAt: new Date(this.clock.now()).toISOString() } : undefined,
      );
    await this.revokeOnBus(this.get(id)!);
    return tokenInfo(this.get(id)!, this.clock.now());
  }

  /** Every token that ended (expired, used up, revoked) has its bootstrap key revoked on the bus. */
  async sweep(): Promise<number> {
    let n = 0;
    const now = this.clock.now();
    for (const { rec } of [...this.tokens.values()]) {
      if (rec.busRevoked || tokenState(rec, now) === 'active') continue;
      try {
        await this.revokeOnBus(rec);
        n++;
      } catch (err) {
        this.log.warn(
          { err, tokenId: rec.id },
          'cannot revoke an ended join token on the bus; retrying later',
        );
      }
    }
    return n;
  }

  private async revokeOnBus(rec: JoinTokenRecord): Promise<void> {
    if (rec.busRevoked) return;
    await this.bus.revoke(rec.bootstrapKey);
    await this.change(rec.id, (r) => (r && !r.busRevoked ? { ...r, busRevoked: true } : undefined));
  }

  /**
   * Writes `fn(record)` under the record's revision (`undefined`: nothing to write). Another
   * coordinator may have written it since we read it (a previous leader finishing a revocation,
   * a follower's term before this one): on a conflict the record is read again and `fn` decides
   * once more on what is stored, rather than failing on a stale copy for good.
   */
  private async change(
    id: string,
    fn: (rec: JoinTokenRecord | undefined) => JoinTokenRecord | undefined,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const cur = this.tokens.get(id);
      const next = fn(cur?.rec);
      if (!next || !cur) return;
      try {
        this.tokens.set(id, { rec: next, revision: await this.store.update(KEY(id), next, cur.revision) });
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== 'DROVER_ERR_STORE_CONFLICT' || attempt >= 2) throw err;
        const fresh = await this.store.get<unknown>(KEY(id));
        if (fresh && Value.Check(JoinTokenRecord, fresh.value))
          this.tokens.set(id, { rec: fresh.value, revision: fresh.revision });
        else this.tokens.delete(id); // deleted meanwhile: `fn` decides on nothing
      }
    }
  }
}
