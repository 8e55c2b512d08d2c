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
 * The coordinator's plan-signing key, pinned on first join in `<dataDir>/coordinator-key.json`
 * (trust on first use), or checked against a configured fingerprint. A later registration that
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
  ) {
    this.path = join(dataDir, 'coordinator-key.json');
  }

  async load(): Promise<void> {
    let pf: PinFile;
    try {
      pf = JSON.parse(await readFile(this.path, 'utf8')) as PinFile;
    } catch {
      return;
    }
    const fingerprint = keyFingerprintFromB64(pf.publicKey);
    if (this.configuredFingerprint && fingerprint !== this.configuredFingerprint) {
      throw new AgentError(
        'DROVER_ERR_KEY_MISMATCH',
        `pinned coordinator key ${fingerprint} differs from the configured coordinatorKeyFingerprint ${this.configuredFingerprint}; remove ${this.path} to re-pin`,
      );
    }
    this.pinned = { key: publicKeyFromB64(pf.publicKey), fingerprint };
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
