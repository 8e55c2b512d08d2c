/**
 * The bus's decentralised authorisation (NATS operator → accounts → user JWTs, signed with nkeys):
 * the keys live in the coordinator's data directory (`<dataDir>/bus/`), the JWTs are minted from
 * them. nats-server runs with the operator JWT and a `full` resolver, so adding a node (a new user
 * JWT) needs nothing from the server, and revoking one is an account-JWT update pushed over the
 * system account (`$SYS.REQ.CLAIMS.UPDATE`), never a reload.
 *
 * Identities (see docs/security.md):
 * - the coordinator: a user of the DROVER account with no permission limits;
 * - a node: a user bound to the nkey the agent made (its seed never leaves the host), confined to
 *   its own subjects (`natsPermissionsForNode`);
 * - a join token's bootstrap user: may only publish its join request and read its own inbox, and
 *   expires with the token;
 * - the system user: pushes account updates; only the coordinator holds it.
 */
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  Algorithms,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fmtCreds,
  type Permissions,
} from '@nats-io/jwt';
import {
  createAccount,
  createOperator,
  createUser,
  fromPublic,
  fromSeed,
  type KeyPair,
} from '@nats-io/nkeys';
import { writeFileAtomic } from '../../lib/atomic-file.js';
import { bootstrapInboxPrefix, natsPermissionsForNode, subjects } from '../../protocol/index.js';

/** The account every Drover identity lives in, and the NATS system account. */
export const DROVER_ACCOUNT = 'DROVER';
export const SYSTEM_ACCOUNT = 'SYS';

/** Largest message a node may publish (facts are the biggest: a few KiB; 256 KiB leaves room). */
export const NODE_MAX_PAYLOAD = 256 * 1024;
/** Largest join request a bootstrap user may publish. */
export const BOOTSTRAP_MAX_PAYLOAD = 64 * 1024;

const FILES = {
  operator: 'operator.nk',
  system: 'account-sys.nk',
  account: 'account-drover.nk',
  coordinator: 'coordinator.creds',
  sys: 'sys.creds',
  revocations: 'revocations.json',
} as const;

export class BusAuthError extends Error {
  override name = 'BusAuthError';
  constructor(
    readonly code: 'DROVER_ERR_BUS_AUTH',
    message: string,
  ) {
    super(message);
  }
}

async function loadOrCreate(path: string, make: () => KeyPair, prefix: string): Promise<KeyPair> {
  let text: string | undefined;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new BusAuthError('DROVER_ERR_BUS_AUTH', `cannot read ${path}: ${(err as Error).message}`);
  }
  if (text === undefined) {
    const kp = make();
    await writeFileAtomic(path, `${new TextDecoder().decode(kp.getSeed())}\n`, 0o600);
    return kp;
  }
  try {
    if (!text.startsWith(prefix)) throw new Error(`expected a seed starting with ${prefix}`);
    return fromSeed(new TextEncoder().encode(text));
  } catch (err) {
    throw new BusAuthError(
      'DROVER_ERR_BUS_AUTH',
      `${path} holds no valid nkey seed (${(err as Error).message}); restore it from a backup — a new one would lock every node out`,
    );
  }
}

/** user public key → unix seconds: user JWTs issued at or before that time are revoked */
export type Revocations = Record<string, number>;

export interface UserCreds {
  /** the user JWT */
  jwt: string;
  /** the text of a `.creds` file (JWT plus seed), when the seed is ours to give */
  creds?: string;
}

function credsText(jwt: string, kp: KeyPair): string {
  return new TextDecoder().decode(fmtCreds(jwt, kp));
}

/** Whether `s` is an nkey user public key (U…, 56 characters). */
export function isUserPublicKey(s: string): boolean {
  if (!/^U[A-Z2-7]{55}$/.test(s)) return false;
  try {
    fromPublic(s);
    return true;
  } catch {
    return false;
  }
}

/**
 * The bus's keys and what they sign. `BusAuth.open(dir)` loads them, making any that are missing
 * (the first start), and writes the coordinator's and the system user's creds files.
 */
export class BusAuth {
  private revocations: Revocations;

  private constructor(
    readonly dir: string,
    private readonly operator: KeyPair,
    private readonly system: KeyPair,
    private readonly account: KeyPair,
    revocations: Revocations,
    /** the operator and system account JWTs (they never change) */
    readonly operatorJwt: string,
    readonly systemAccountJwt: string,
  ) {
    this.revocations = revocations;
  }

  static async open(dir: string): Promise<BusAuth> {
    // the dir holds the operator and account seeds: its owner only
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const operator = await loadOrCreate(join(dir, FILES.operator), createOperator, 'SO');
    const system = await loadOrCreate(join(dir, FILES.system), createAccount, 'SA');
    const account = await loadOrCreate(join(dir, FILES.account), createAccount, 'SA');
    let revocations: Revocations = {};
    const revFile = join(dir, FILES.revocations);
    try {
      const parsed = JSON.parse(await readFile(revFile, 'utf8')) as unknown;
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
        throw new Error('expected an object of user key → time');
      for (const [k, v] of Object.entries(parsed as Record<string, unknown>))
        if (!isUserPublicKey(k) || typeof v !== 'number' || !Number.isInteger(v))
          throw new Error(`entry ${JSON.stringify(k)} is not user key → unix seconds`);
      revocations = parsed as Revocations;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new BusAuthError(
          'DROVER_ERR_BUS_AUTH',
          `${revFile} is not a revocation list (${(err as Error).message}); fix or remove it (removing un-revokes removed nodes)`,
        );
    }
    const opts = { algorithm: Algorithms.v2 };
    // iat changes every encode; keep the JWTs stable per key so a restart writes the same config
    const operatorJwt = await encodeOperator(
      'drover',
      operator,
      { system_account: system.getPublicKey() },
      opts,
    );
    const systemAccountJwt = await encodeAccount(
      SYSTEM_ACCOUNT,
      system,
      { limits: { subs: -1, conn: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true } },
      { ...opts, signer: operator },
    );
    const auth = new BusAuth(dir, operator, system, account, revocations, operatorJwt, systemAccountJwt);
    await writeFileAtomic(join(dir, FILES.coordinator), (await auth.coordinatorUser()).creds!, 0o600);
    await writeFileAtomic(join(dir, FILES.sys), (await auth.systemUser()).creds!, 0o600);
    return auth;
  }

  get operatorPublicKey(): string {
    return this.operator.getPublicKey();
  }
  get accountPublicKey(): string {
    return this.account.getPublicKey();
  }
  get systemAccountPublicKey(): string {
    return this.system.getPublicKey();
  }
  /** the coordinator's creds file (`nats.credsFile` of the coordinator) */
  get coordinatorCredsFile(): string {
    return join(this.dir, FILES.coordinator);
  }
  /** the system user's creds file: pushes account updates */
  get systemCredsFile(): string {
    return join(this.dir, FILES.sys);
  }

  /** The DROVER account JWT, carrying the current revocations. */
  async accountJwt(): Promise<string> {
    return encodeAccount(
      DROVER_ACCOUNT,
      this.account,
      {
        limits: {
          subs: -1,
          conn: -1,
          leaf: -1,
          data: -1,
          payload: -1,
          imports: -1,
          exports: -1,
          wildcards: true,
          // JetStream on (the HA store and the artifact store use it)
          mem_storage: -1,
          disk_storage: -1,
          streams: -1,
          consumer: -1,
        },
        revocations: { ...this.revocations },
      },
      { algorithm: Algorithms.v2, signer: this.operator },
    );
  }

  private async user(
    name: string,
    kp: KeyPair,
    account: KeyPair,
    user: Parameters<typeof encodeUser>[3],
    exp?: number,
  ) {
    return encodeUser(name, kp, account, user, {
      algorithm: Algorithms.v2,
      ...(exp !== undefined ? { exp } : {}),
    });
  }

  /** The coordinator's user: unlimited within the DROVER account. A fresh key on every start. */
  async coordinatorUser(): Promise<UserCreds> {
    const kp = createUser();
    const jwt = await this.user('coordinator', kp, this.account, {});
    return { jwt, creds: credsText(jwt, kp) };
  }

  /** The system account's user, for `$SYS.REQ.CLAIMS.UPDATE`. */
  async systemUser(): Promise<UserCreds> {
    const kp = createUser();
    const jwt = await this.user('drover-sys', kp, this.system, {});
    return { jwt, creds: credsText(jwt, kp) };
  }

  /**
   * A node's user JWT, bound to the public key the agent made: it may publish only its own
   * subjects, subscribe only to its plan, task and inbox subjects, and answer requests sent to it.
   */
  async nodeUser(nodeId: string, userPublicKey: string): Promise<UserCreds> {
    if (!isUserPublicKey(userPublicKey))
      throw new BusAuthError(
        'DROVER_ERR_BUS_AUTH',
        `${JSON.stringify(userPublicKey)} is not an nkey user public key`,
      );
    const p = natsPermissionsForNode(nodeId);
    const permissions: Permissions = {
      pub: { allow: p.publish.allow },
      sub: { allow: p.subscribe.allow },
      resp: { max: 1, ttl: 0 },
    };
    const jwt = await this.user(`node:${nodeId}`, fromPublic(userPublicKey), this.account, {
      ...permissions,
      payload: NODE_MAX_PAYLOAD,
      subs: 16,
      tags: [`node:${nodeId}`],
    });
    return { jwt };
  }

  /**
   * A join token's bootstrap user (a fresh key, given to the holder with the token): may publish
   * only `drover.v1.join.<tokenId>` and read `_INBOX_join_<tokenId>.>`; expires with the token.
   */
  async bootstrapUser(
    tokenId: string,
    expiresAtMs: number,
  ): Promise<UserCreds & { publicKey: string; seed: string }> {
    const kp = createUser();
    const jwt = await this.user(
      `join:${tokenId}`,
      kp,
      this.account,
      {
        pub: { allow: [subjects.join(tokenId)] },
        sub: { allow: [`${bootstrapInboxPrefix(tokenId)}.>`] },
        payload: BOOTSTRAP_MAX_PAYLOAD,
        subs: 4,
        tags: [`join:${tokenId}`],
      },
      Math.floor(expiresAtMs / 1000),
    );
    return {
      jwt,
      creds: credsText(jwt, kp),
      publicKey: kp.getPublicKey(),
      seed: new TextDecoder().decode(kp.getSeed()),
    };
  }

  /** Revokes every JWT issued to `userPublicKey` up to now; persisted. Push `accountJwt()` after. */
  async revoke(userPublicKey: string, atMs = Date.now()): Promise<void> {
    if (!isUserPublicKey(userPublicKey))
      throw new BusAuthError(
        'DROVER_ERR_BUS_AUTH',
        `${JSON.stringify(userPublicKey)} is not an nkey user public key`,
      );
    this.revocations = { ...this.revocations, [userPublicKey]: Math.ceil(atMs / 1000) };
    await writeFileAtomic(
      join(this.dir, FILES.revocations),
      `${JSON.stringify(this.revocations, null, 2)}\n`,
      0o600,
    );
  }

  isRevoked(userPublicKey: string): boolean {
    return userPublicKey in this.revocations;
  }
}
