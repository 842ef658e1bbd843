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
