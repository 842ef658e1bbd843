import { writeEdgeExport } from '../../edge/fhir/export.js';
import { intFlag, parse, UsageError } from './args.js';

export const EXPORT_FHIR_USAGE = `Usage: medge edge export-fhir --data DIR --out FILE [--since TIME] [--waveform-seconds N] [--no-validate]

Writes what the edge at DIR stored as a FHIR R4 transaction Bundle (JSON) to FILE: a Device per
device (firmware version) and per on-device model (id, version, sha256), a pseudonymous Patient per
device, Observations for heart rate (LOINC 8867-4), glucose from a meter (41653-7) and from a CGM
(99504-3) kept distinct, ECG findings (8601-7) and heart-sound screening results with probability,
input quality and the model as provenance, ECG waveform excerpts around ECG findings and alerts as
SampledData, and a DiagnosticReport per device session. Entries are PUTs with stable ids, so
importing twice changes nothing. Works while the edge runs (read-only).

--since TIME      only records at or after TIME (ISO 8601, e.g. 2026-11-23 or 2026-11-23T08:00:00Z)
--waveform-seconds N  seconds of ECG kept either side of each ECG finding or alert (default 5; 0 = none)
--no-validate     skip validation against the official FHIR R4 JSON schema (on by default; an
                  invalid Bundle is not written and the command exits 1)`;

export function exportFhirCommand(args: string[]): number {
  const { values } = parse(
    args,
    { data: { type: 'string' }, out: { type: 'string' }, since: { type: 'string' }, 'waveform-seconds': { type: 'string' }, 'no-validate': { type: 'boolean' } },
    EXPORT_FHIR_USAGE,
  );
  if (values.help) {
    process.stdout.write(`${EXPORT_FHIR_USAGE}\n`);
    return 0;
  }
  if (!values.data || !values.out) throw new UsageError('--data DIR and --out FILE are required', EXPORT_FHIR_USAGE);
  let sinceMs: number | undefined;
  if (values.since !== undefined) {
    sinceMs = Date.parse(values.since);
    if (Number.isNaN(sinceMs)) throw new UsageError(`--since must be an ISO 8601 date or time, got ${JSON.stringify(values.since)}`, EXPORT_FHIR_USAGE);
  }
  const waveformSeconds = intFlag(values['waveform-seconds'], '--waveform-seconds', EXPORT_FHIR_USAGE, 0, 3600) ?? 5;
  const result = writeEdgeExport(values.data, values.out, { ...(sinceMs === undefined ? {} : { sinceMs }), waveformWindowMs: waveformSeconds * 1000, validate: !values['no-validate'] });
  if (!result.written) {
    process.stderr.write(`medge: the Bundle does not validate against the FHIR R4 schema; not written:\n${result.errors.slice(0, 20).map((e) => `  ${e}`).join('\n')}\n`);
    return 1;
  }
  const total = [...result.counts.values()].reduce((a, b) => a + b, 0);
  process.stdout.write(`wrote ${values.out}: ${total} resources (${[...result.counts].map(([t, n]) => `${n} ${t}`).join(', ')})${values['no-validate'] ? '' : ', valid against the FHIR R4 schema'}\n`);
  return 0;
}
