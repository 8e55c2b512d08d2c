import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { type Clock, isoNow, systemClock } from '../lib/clock.js';
import { keyFingerprintFromB64, publicKeyFromB64 } from '../protocol/index.js';
import { AgentError } from './errors.js';

interface PinFile {
  publicKey: string;
  fingerprint: string;
  pinnedAt: string;
}

/**
 * The coordinator's plan-signing key, pinned at join in `<dataDir>/coordinator-key.json`: checked
 * against the configured fingerprint, or (only with insecureTrustFirstCoordinator) trusted on
 * first use. A damaged pin file stops the agent, naming it. A later registration that
 * offers another key is refused: rotating the key means deleting the pin file on purpose.
 */
export class KeyPin {
  private readonly path: string;
  private pinned: { key: KeyObject; fingerprint: string } | undefined;

  constructor(
    dataDir: string,
    private readonly configuredFingerprint?: string,
    /** stamps `pinnedAt` */
    private readonly clock: Clock = systemClock,
    /** trust on first use, without a configured fingerprint: only when asked for (insecure) */
    private readonly allowTrustOnFirstUse = false,
  ) {
    this.path = join(dataDir, 'coordinator-key.json');
  }

  get file(): string {
    return this.path;
  }

  /**
   * Reads the pin file. A missing file pins nothing; an unreadable or damaged one throws
   * DROVER_ERR_PIN_FILE naming it — never a silent fall-back to trust on first use.
   */
  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new AgentError(
        'DROVER_ERR_PIN_FILE',
        `cannot read the pinned coordinator key ${this.path}: ${(err as Error).message}; fix its permissions (the agent will not trust a coordinator key on first use instead)`,
      );
    }
    const damaged = (why: string) =>
      new AgentError(
        'DROVER_ERR_PIN_FILE',
        `the pinned coordinator key file ${this.path} is damaged (${why}); restore it, or delete it and set coordinatorKeyFingerprint (\`drover join-command\` prints it) to pin again — the agent will not trust a key on first use instead`,
      );
    let pf: PinFile;
    try {
      pf = JSON.parse(text) as PinFile;
    } catch (err) {
      throw damaged(`not JSON: ${(err as Error).message}`);
    }
    if (!pf || typeof pf !== 'object' || typeof pf.publicKey !== 'string') throw damaged('no publicKey');
    let fingerprint: string;
    let key: KeyObject;
    try {
      fingerprint = keyFingerprintFromB64(pf.publicKey);
      key = publicKeyFromB64(pf.publicKey);
    } catch (err) {
      throw damaged(`publicKey is not an ed25519 key: ${(err as Error).message}`);
    }
    if (typeof pf.fingerprint === 'string' && pf.fingerprint !== fingerprint)
      throw damaged(`its fingerprint ${pf.fingerprint} is not its key's (${fingerprint})`);
    if (this.configuredFingerprint && fingerprint !== this.configuredFingerprint) {
      throw new AgentError(
        'DROVER_ERR_KEY_MISMATCH',
        `pinned coordinator key ${fingerprint} differs from the configured coordinatorKeyFingerprint ${this.configuredFingerprint}; remove ${this.path} to re-pin`,
      );
    }
    this.pinned = { key, fingerprint };
  }

  /** The fingerprint a join must be signed by: configured, else pinned; undefined means TOFU (if allowed). */
  expectedFingerprint(): string | undefined {
    return this.configuredFingerprint ?? this.pinned?.fingerprint;
  }

  /** Throws DROVER_ERR_NO_PIN unless a fingerprint is configured or pinned, or TOFU was asked for. */
  requirePinOrTofu(): void {
    if (this.expectedFingerprint() || this.allowTrustOnFirstUse) return;
    throw new AgentError(
      'DROVER_ERR_NO_PIN',
      `no coordinatorKeyFingerprint is configured and ${this.path} pins no key: set coordinatorKeyFingerprint (\`drover join-command\` prints it, as --coordinator-key-fingerprint), or — insecure — insecureTrustFirstCoordinator: true`,
    );
  }

  key(): KeyObject | undefined {
    return this.pinned?.key;
  }

  fingerprint(): string | undefined {
    return this.pinned?.fingerprint;
  }

  /** Checks the key a RegisterReply offers; pins it when nothing is pinned yet. */
  async accept(signingKeyB64: string): Promise<void> {
    let key: KeyObject;
    let fingerprint: string;
    try {
      key = publicKeyFromB64(signingKeyB64);
      fingerprint = keyFingerprintFromB64(signingKeyB64);
    } catch (err) {
      throw new AgentError(
        'DROVER_ERR_KEY_MISMATCH',
        `coordinator offered an invalid signing key: ${(err as Error).message}`,
      );
    }
    if (this.configuredFingerprint && fingerprint !== this.configuredFingerprint) {
      throw new AgentError(
        'DROVER_ERR_KEY_MISMATCH',
        `coordinator signing key ${fingerprint} does not match the configured fingerprint ${this.configuredFingerprint}`,
      );
    }
    if (!this.pinned && !this.configuredFingerprint) this.requirePinOrTofu();
    if (this.pinned) {
      if (this.pinned.fingerprint !== fingerprint) {
        throw new AgentError(
          'DROVER_ERR_KEY_MISMATCH',
          `coordinator signing key ${fingerprint} differs from the pinned key ${this.pinned.fingerprint}; remove ${this.path} to re-pin`,
        );
      }
      return;
    }
    const pf: PinFile = { publicKey: signingKeyB64, fingerprint, pinnedAt: isoNow(this.clock) };
    await writeFileAtomic(this.path, `${JSON.stringify(pf, null, 2)}\n`, 0o644);
    this.pinned = { key, fingerprint };
  }
}
