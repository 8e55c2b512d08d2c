import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { writeFileAtomic } from '../../lib/atomic-file.js';
import { type Clock, systemClock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import { TOKEN_ROLES, type TokenRole, TokenRoleSchema } from '../../protocol/rest/schemas.js';
import { coordinatorError } from '../errors.js';
import type { Store, Watcher } from '../store/types.js';

export { TOKEN_ROLES, type TokenRole, TokenRoleSchema };

/** What `<dataDir>/tokens.json` holds per token: never the token itself, only its sha256. */
export const TokenRecord = Type.Object({
  id: Type.String({ minLength: 1 }),
  name: Type.String({ minLength: 1, maxLength: 128 }),
  role: TokenRoleSchema,
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  createdAt: Type.String(),
});
export type TokenRecord = Static<typeof TokenRecord>;

const TokenFile = Type.Object({ version: Type.Literal(1), tokens: Type.Array(TokenRecord) });
type TokenFile = Static<typeof TokenFile>;

/** A token as the API shows it: everything but the hash. */
export type TokenInfo = Omit<TokenRecord, 'sha256'>;

const RANK: Record<TokenRole, number> = { viewer: 0, operator: 1, admin: 2 };

/** True when a token of role `have` may do what needs `need`. */
export function roleAllows(have: TokenRole, need: TokenRole): boolean {
  return RANK[have] >= RANK[need];
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * `drv_<id>_` + 32 random bytes, base64url: recognisable in leaked-secret scans, 256 bits of
 * entropy. The id (8 hex digits, the token's public id) lets a wrong secret be counted against the
 * token it claims to be (the API's failure limits). Tokens from before the id was embedded
 * (`drv_` + the 43 characters only) keep working; their failures count against the address only.
 */
export function newTokenSecret(id: string): string {
  return `drv_${id}_${randomBytes(32).toString('base64url')}`;
}

const WITH_ID = /^drv_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$/;

/** The token id a well-formed presented token names, or undefined (old format, garbled). */
export function claimedTokenId(presented: string): string | undefined {
  return WITH_ID.exec(presented)?.[1];
}

/** What a presented token turned out to be: a valid token, or a wrong secret for a known id. */
export interface TokenCheck {
  token?: TokenInfo;
  /** set when the token is well-formed, names a known token id, and its secret is wrong */
  wrongSecretFor?: TokenInfo;
}

export interface TokenStoreOptions {
  /** `<dataDir>/tokens.json`; omit for a memory-only store (tests) */
  path?: string;
  logger: Logger;
  clock?: Clock;
  /**
   * Coordinator HA: the tokens live in the shared store (key `meta/api-tokens`, the same hashes as
   * the file), so a token made on one coordinator is good on every one, and a deleted one on none.
   * On the first start the file's tokens (if any) move in; the file is left as it was.
   */
  shared?: Store;
}

const SHARED_KEY = 'meta/api-tokens';

/**
 * API bearer tokens with roles. Only sha256 hashes are kept (in memory and on disk, file mode
 * 0600, written atomically), so a leaked tokens.json does not leak tokens. Lookup hashes the
 * presented token and compares it with every stored hash in constant time.
 */
export class TokenStore {
  private tokens: TokenRecord[] = [];
  private readonly clock: Clock;
  private revision?: number;
  private watcher?: Watcher;

  private constructor(private readonly opts: TokenStoreOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  /** Opens (or starts) the token file. A malformed file stops start-up rather than being replaced. */
  static async open(opts: TokenStoreOptions): Promise<TokenStore> {
    const s = new TokenStore(opts);
    if (!opts.path) return s;
    let text: string | undefined;
    try {
      text = readFileSync(opts.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new Error(`cannot read API tokens ${opts.path}: ${(err as Error).message}`);
    }
    if (text !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        throw new Error(
          `API token file ${opts.path} is not valid JSON (${(err as Error).message}); fix or remove it`,
        );
      }
      if (!Value.Check(TokenFile, parsed)) {
        const first = [...Value.Errors(TokenFile, parsed)][0];
        throw new Error(
          `API token file ${opts.path}: ${first?.path || '/'}: ${first?.message ?? 'invalid'}; fix or remove it`,
        );
      }
      s.tokens = (parsed as TokenFile).tokens;
    }
    if (opts.shared) await s.openShared(opts.shared);
    return s;
  }

  private async openShared(store: Store): Promise<void> {
    const from = store.revision();
    const cur = await store.get<unknown>(SHARED_KEY);
    if (cur) this.adoptShared(cur.value, cur.revision);
    else if (this.tokens.length) {
      // the first coordinator of the fleet: its file's tokens become everyone's
      try {
        this.revision = await store.create(SHARED_KEY, { version: 1, tokens: this.tokens });
      } catch {
        const again = await store.get<unknown>(SHARED_KEY);
        if (again) this.adoptShared(again.value, again.revision);
      }
    }
    // another coordinator (the leader) created or deleted one: this one knows at once
    this.watcher = store.watch<unknown>(SHARED_KEY, from, (e) => {
      if (e.key === SHARED_KEY && e.type === 'put') this.adoptShared(e.value, e.revision);
    });
  }

  private adoptShared(value: unknown, revision: number): void {
    if (this.revision !== undefined && revision <= this.revision) return;
    if (!Value.Check(TokenFile, value)) {
      const first = [...Value.Errors(TokenFile, value)][0];
      this.opts.logger.error(
        { key: SHARED_KEY, at: first?.path, err: first?.message },
        'the shared API tokens in the store are malformed; keeping the ones held',
      );
      return;
    }
    this.tokens = (value as TokenFile).tokens;
    this.revision = revision;
  }

  /** Stops following the shared tokens. */
  close(): void {
    this.watcher?.stop();
  }

  /**
   * First start: when no admin token exists, creates one and writes it to `adminTokenPath` (mode
   * 0600). Only the path is logged, never the token.
   */
  async bootstrapAdmin(adminTokenPath: string): Promise<{ created: boolean; path: string }> {
    if (this.tokens.some((t) => t.role === 'admin')) return { created: false, path: adminTokenPath };
    let token: string;
    try {
      ({ token } = await this.create('bootstrap-admin', 'admin'));
    } catch (err) {
      // coordinator HA: another coordinator made the fleet's first admin token meanwhile
      const shared = this.opts.shared;
      const cur = shared ? await shared.get<unknown>(SHARED_KEY) : undefined;
      if (!cur) throw err;
      this.adoptShared(cur.value, cur.revision);
      return { created: false, path: adminTokenPath };
    }
    await writeFileAtomic(adminTokenPath, `${token}\n`, 0o600);
    this.opts.logger.warn(
      { path: adminTokenPath },
      'created the first admin API token; it is in this file (mode 0600): use it to create named tokens, then delete it',
    );
    return { created: true, path: adminTokenPath };
  }

  list(): TokenInfo[] {
    return this.tokens.map(({ sha256: _h, ...rest }) => rest);
  }

  /** Creates a token; the secret is returned once and never stored. Names are unique. */
  async create(name: string, role: TokenRole): Promise<TokenInfo & { token: string }> {
    const same = this.tokens.find((t) => t.name === name);
    if (same)
      throw coordinatorError(
        'DROVER_ERR_TOKEN_EXISTS',
        `an API token named ${JSON.stringify(name)} exists already (id ${same.id}, role ${same.role}); pick another name, or delete it first (\`drover token delete ${name}\`)`,
        { name, id: same.id },
      );
    let id = randomUUID().slice(0, 8);
    while (this.tokens.some((t) => t.id === id)) id = randomUUID().slice(0, 8);
    const token = newTokenSecret(id);
    const rec: TokenRecord = {
      id,
      name,
      role,
      sha256: sha256(token).toString('hex'),
      createdAt: new Date(this.clock.now()).toISOString(),
    };
    this.tokens = [...this.tokens, rec];
    try {
      await this.persist();
    } catch (err) {
      this.tokens = this.tokens.filter((t) => t !== rec);
      throw err;
    }
    const { sha256: _h, ...info } = rec;
    return { ...info, token };
  }

  /**
   * Deletes by id or by name (names are unique; a name that older versions let repeat must be
   * deleted by id); refuses to delete the last admin token (nobody could manage tokens again).
   */
  async delete(id: string): Promise<TokenInfo> {
    let rec = this.tokens.find((t) => t.id === id);
    if (!rec) {
      const named = this.tokens.filter((t) => t.name === id);
      if (named.length > 1)
        throw coordinatorError(
          'DROVER_ERR_ILLEGAL_STATE',
          `${named.length} API tokens are named ${JSON.stringify(id)} (ids ${named.map((t) => t.id).join(', ')}); delete one by its id`,
          { name: id, ids: named.map((t) => t.id) },
        );
      rec = named[0];
    }
    if (!rec)
      throw coordinatorError(
        'DROVER_ERR_TOKEN_NOT_FOUND',
        `no API token with id or name ${JSON.stringify(id)}; list them with \`drover get tokens\``,
        { id },
      );
    if (rec.role === 'admin' && this.tokens.filter((t) => t.role === 'admin').length === 1)
      throw coordinatorError(
        'DROVER_ERR_ILLEGAL_STATE',
        'refusing to delete the last admin token; create another admin token first',
        { id },
      );
    const before = this.tokens;
    this.tokens = this.tokens.filter((t) => t !== rec);
    try {
      await this.persist();
    } catch (err) {
      this.tokens = before;
      throw err;
    }
    const { sha256: _h, ...info } = rec;
    return info;
  }

  /** The token's record, or undefined. Every stored hash is compared, each in constant time. */
  verify(presented: string): TokenInfo | undefined {
    const h = sha256(presented);
    let found: TokenRecord | undefined;
    for (const t of this.tokens) {
      if (timingSafeEqual(h, Buffer.from(t.sha256, 'hex')) && !found) found = t;
    }
    if (!found) return undefined;
    const { sha256: _h, ...info } = found;
    return info;
  }

  /** verify(), and when that fails, whether the token named a known token id (see TokenCheck). */
  check(presented: string): TokenCheck {
    const token = this.verify(presented);
    if (token) return { token };
    const id = claimedTokenId(presented);
    const rec = id === undefined ? undefined : this.tokens.find((t) => t.id === id);
    if (!rec) return {};
    const { sha256: _h, ...info } = rec;
    return { wrongSecretFor: info };
  }

  private async persist(): Promise<void> {
    const shared = this.opts.shared;
    if (shared) {
      const body: TokenFile = { version: 1, tokens: this.tokens };
      this.revision =
        this.revision === undefined
          ? await shared.create(SHARED_KEY, body)
          : await shared.update(SHARED_KEY, body, this.revision);
      return;
    }
    if (!this.opts.path) return;
    const body: TokenFile = { version: 1, tokens: this.tokens };
    await writeFileAtomic(this.opts.path, `${JSON.stringify(body, null, 2)}\n`, 0o600);
  }
}

export function tokensPath(dataDir: string): string {
  return join(dataDir, 'tokens.json');
}

export function adminTokenPath(dataDir: string): string {
  return join(dataDir, 'admin-token');
}
