import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file.js';
import {
  generateSigningKey,
  type SigningKeyPair,
  signingKeyFromPem,
  signingKeyToPem,
} from '../protocol/index.js';

/**
 * Loads the plan-signing key from `<dataDir>/plan-signing-key.pem`, creating it (mode 0600) on
 * first start. Agents pin its public half, so it must never change silently: an unreadable or
 * malformed key file stops start-up instead of being replaced.
 */
export async function loadOrCreateSigningKey(dataDir: string): Promise<SigningKeyPair> {
  const path = join(dataDir, 'plan-signing-key.pem');
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new Error(`cannot read plan signing key ${path}: ${(err as Error).message}`);
    const key = generateSigningKey();
    await writeFileAtomic(path, signingKeyToPem(key), 0o600);
    return key;
  }
  try {
    return signingKeyFromPem(pem);
  } catch (err) {
    throw new Error(
      `plan signing key ${path} is not a valid ed25519 PEM key (${(err as Error).message}); restore it from backup — agents have pinned it`,
    );
  }
}
