export { readArtifactFiles, readManifest, signArtifactDir, verifyArtifactDir } from './artifact-files.js';
export {
  type ArtifactManifest,
  ArtifactVerificationError,
  canonicalJson,
  generateSigningKeyPair,
  keyIdOf,
  MANIFEST_FILE,
  sha256Hex,
  signManifest,
  type VerifyFailure,
  verifyArtifact,
} from './signing.js';
export {
  CIPHER_SUITES,
  type CipherSuite,
  DATA_KEY_BYTES,
  EnvelopeError,
  envelopeKeyId,
  open,
  type SealKey,
  seal,
  unwrapKey,
  wrapKey,
} from './envelope.js';
