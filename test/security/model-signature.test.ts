import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ArtifactVerificationError, generateSigningKeyPair } from '../../device-sdk/security/signing.js';
import { signArtifactDir } from '../../device-sdk/security/artifact-files.js';
import { defaultGlucoseModelDir, loadGlucoseForecaster } from '../../firmware/glucose-monitor.js';
import { ROOT } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/temp.js';

const tmp = useTempDirs('model-signature');
const devPub = readFileSync(join(ROOT, 'models', 'keys', 'dev-signing.pub'), 'utf8');

function copyModel(): string {
  const dir = join(tmp(), 'glucose-forecast');
  cpSync(defaultGlucoseModelDir(), dir, { recursive: true });
  return dir;
}

function refusal(fn: () => unknown): ArtifactVerificationError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ArtifactVerificationError) return error;
    throw error;
  }
  throw new Error('expected the model to be refused');
}

describe('the runtime loads only signed, untampered models', () => {
  it('accepts the shipped glucose model signed by the trusted key', () => {
    const forecaster = loadGlucoseForecaster(copyModel(), [devPub]);
    expect(forecaster).toBeDefined();
  });

  it('refuses a tampered, an unsigned and a foreign-signed model with the reason', () => {
    const tampered = copyModel();
    const weights = readFileSync(join(tampered, 'weights.bin'));
    weights[0] = (weights[0] as number) ^ 0xff;
    writeFileSync(join(tampered, 'weights.bin'), weights);
    expect(refusal(() => loadGlucoseForecaster(tampered, [devPub])).reason).toBe('hash-mismatch');

    const unsigned = copyModel();
    rmSync(join(unsigned, 'medge-manifest.json'));
    expect(refusal(() => loadGlucoseForecaster(unsigned, [devPub])).reason).toBe('unsigned');

    const foreign = copyModel();
    signArtifactDir(foreign, generateSigningKeyPair().privatePem, {});
    expect(refusal(() => loadGlucoseForecaster(foreign, [devPub])).reason).toBe('unknown-key');
  });
});
