/**
 * Signed artifacts in the runtime: the one way a model or update bundle gets from a directory into
 * a running process.
 *
 * `loadVerifiedArtifact(dir, trustedKeys)` reads every file of the directory ONCE, verifies the
 * Ed25519 signature of its manifest against the trusted keys and every file's sha256, and returns
 * those same bytes: a loader builds from `artifact.files`, never by reading the directory again
 * (which could have changed after the check). Unsigned, wrongly signed, unknown-key and tampered
 * artifacts throw `ArtifactVerificationError` with a machine-readable `reason`.
 *
 * `ArtifactSlot` holds the artifact in use. `offer(dir)` verifies and loads a candidate; when either
 * step fails it keeps the previous one running and reports why. Model loaders (inference) call:
 *
 *   const slot = new ArtifactSlot({ name: 'ecg-beats', trustedKeys, load: (a) => buildModel(a.files) });
 *   const outcome = await slot.offer('/var/lib/medge/models/ecg-beats-1.3.0');
 *   if (!outcome.accepted) log.error({ reason: outcome.reason }, outcome.message); // slot.current unchanged
 */
import { readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { readArtifactFiles, readManifest } from './artifact-files.js';
import { type ArtifactManifest, ArtifactVerificationError, keyIdOf, verifyArtifact, type VerifyFailure } from './signing.js';

export interface VerifiedArtifact {
  dir: string;
  manifest: ArtifactManifest;
  /** Key id of the trusted key that signed it. */
  keyId: string;
  /** Every file but the manifest, by relative path: the bytes that were verified. */
  files: ReadonlyMap<string, Uint8Array>;
}

/** Reads, verifies and returns an artifact directory. Throws `ArtifactVerificationError`. */
export function loadVerifiedArtifact(dir: string, trustedPublicPems: readonly string[]): VerifiedArtifact {
  if (trustedPublicPems.length === 0) {
    throw new ArtifactVerificationError('unknown-key', `no trusted signing keys are configured; ${dir} cannot be verified (add the maker's signing.pub to the config's artifacts.trustedKeys)`);
  }
  const manifest = readManifest(dir);
  let files: Map<string, Uint8Array>;
  try {
    files = readArtifactFiles(dir);
  } catch (error) {
    throw new ArtifactVerificationError('missing-file', `cannot read ${dir}: ${(error as Error).message}`);
  }
  const keyId = verifyArtifact(manifest, files, trustedPublicPems);
  return { dir, manifest, keyId, files };
}

/**
 * Reads trusted Ed25519 public keys (PEM files, e.g. `signing.pub` from `medge keys gen-signing`).
 * An unreadable file or a key that is not Ed25519 is a `ConfigError` naming `field[i]`.
 */
export function readTrustedKeys(paths: readonly string[], field = 'artifacts.trustedKeys'): string[] {
  return paths.map((path, i) => {
    let pem: string;
    try {
      pem = readFileSync(path, 'utf8');
    } catch (error) {
      throw new ConfigError(`${field}[${i}]`, path, `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`, 'point it at the signing.pub of the device maker');
    }
    try {
      const key = createPublicKey(pem);
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType} key`);
      keyIdOf(key);
    } catch (error) {
      throw new ConfigError(`${field}[${i}]`, path, `is not an Ed25519 public key in PEM (${(error as Error).message})`, 'use the signing.pub written by medge keys gen-signing');
    }
    return pem;
  });
}

/** Why a slot refused a candidate: a verification failure, or the loader failed on verified bytes. */
export type SlotRefusal = VerifyFailure | 'load-failed';

export type OfferOutcome =
  | { accepted: true; manifest: ArtifactManifest; keyId: string; previous: ArtifactManifest | undefined }
  | { accepted: false; reason: SlotRefusal; message: string; kept: ArtifactManifest | undefined };

export interface ArtifactSlotEvent {
  slot: string;
  dir: string;
  outcome: OfferOutcome;
}

export interface ArtifactSlotOptions<T> {
  /** What the slot holds (`ecg-beats`, `firmware`): for logs and the audit log. */
  name: string;
  trustedKeys: readonly string[];
  /** Builds the live object from a verified artifact (from `artifact.files`, not from disk). */
  load: (artifact: VerifiedArtifact) => T | Promise<T>;
  /** Releases a replaced object (model.dispose()). */
  dispose?: (value: T) => void;
  /** Called after every offer, accepted or not (the runtime writes it to the audit log). Must not throw. */
  onOffer?: (event: ArtifactSlotEvent) => void;
}

/** Holds the artifact in use; a refused candidate never replaces it. */
export class ArtifactSlot<T> {
  private readonly options: ArtifactSlotOptions<T>;
  private held: { value: T; manifest: ArtifactManifest; keyId: string } | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: ArtifactSlotOptions<T>) {
    this.options = options;
  }

  get name(): string {
    return this.options.name;
  }

  /** The artifact in use, if any. */
  get current(): { value: T; manifest: ArtifactManifest; keyId: string } | undefined {
    return this.held;
  }

  /** Verifies and loads `dir`; on success it replaces the current artifact, otherwise the current one stays. Offers run one at a time. */
  offer(dir: string): Promise<OfferOutcome> {
    const run = this.queue.then(() => this.tryOffer(dir));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async tryOffer(dir: string): Promise<OfferOutcome> {
    const kept = this.held?.manifest;
    let outcome: OfferOutcome | undefined;
    let artifact: VerifiedArtifact | undefined;
    try {
      artifact = loadVerifiedArtifact(dir, this.options.trustedKeys);
    } catch (error) {
      if (!(error instanceof ArtifactVerificationError)) throw error;
      outcome = { accepted: false, reason: error.reason, message: error.message, kept };
    }
    if (artifact) {
      try {
        const value = await this.options.load(artifact);
        const previous = this.held;
        this.held = { value, manifest: artifact.manifest, keyId: artifact.keyId };
        if (previous) this.options.dispose?.(previous.value);
        outcome = { accepted: true, manifest: artifact.manifest, keyId: artifact.keyId, previous: previous?.manifest };
      } catch (error) {
        outcome = { accepted: false, reason: 'load-failed', message: `${this.options.name}: ${dir} verified but did not load: ${(error as Error).message}`, kept };
      }
    }
    const result = outcome as OfferOutcome;
    try {
      this.options.onOffer?.({ slot: this.options.name, dir, outcome: result });
    } catch {
      // A listener must not decide whether an artifact runs.
    }
    return result;
  }
}
