/**
 * The terminology the FHIR export uses, in one place, each code checked against a published source
 * (see edge/fhir/README.md for where each was looked up). Where no standard code exists for what
 * medge reports (an automated heart-sound screening, a beat-class finding), the observation carries
 * a medge code plus the nearest standard method/interpretation codes; nothing is invented in LOINC.
 */
export const LOINC = 'http://loinc.org';
export const SNOMED = 'http://snomed.info/sct';
export const UCUM = 'http://unitsofmeasure.org';
/** ISO/IEEE 11073-10101 (MDC) nomenclature, as the FHIR ECG example codes it. */
export const MDC = 'urn:oid:2.16.840.1.113883.6.24';
export const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
export const INTERPRETATION = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';
/** medge's own codes, for what no standard code covers. */
export const MEDGE_CODES = 'https://medge.dev/fhir/CodeSystem/observation';
export const MEDGE_DEVICE_ID = 'https://medge.dev/fhir/sid/device-id';
export const MEDGE_PSEUDONYM = 'https://medge.dev/fhir/sid/patient-pseudonym';
export const MEDGE_MODEL_SHA256 = 'https://medge.dev/fhir/sid/model-sha256';
export const MEDGE_RECORD = 'https://medge.dev/fhir/sid/record';

export interface Coding {
  system: string;
  code: string;
  display: string;
}

export const CODES = Object.freeze({
  /** LOINC 8867-4 Heart rate (the FHIR vital-signs heart rate code). */
  heartRate: { system: LOINC, code: '8867-4', display: 'Heart rate' },
  /** LOINC 41653-7 Glucose [Mass/volume] in Capillary blood by Glucometer: a meter's finger-stick reading. */
  glucoseMeter: { system: LOINC, code: '41653-7', display: 'Glucose [Mass/volume] in Capillary blood by Glucometer' },
  /** LOINC 99504-3 Glucose [Mass/volume] in Interstitial fluid: a CGM sensor reading (HL7 CGM IG). */
  glucoseCgm: { system: LOINC, code: '99504-3', display: 'Glucose [Mass/volume] in Interstitial fluid' },
  /** LOINC 11524-6 EKG study. */
  ecgStudy: { system: LOINC, code: '11524-6', display: 'EKG study' },
  /** LOINC 8601-7 EKG impression. */
  ecgImpression: { system: LOINC, code: '8601-7', display: 'EKG impression' },
  /** MDC 131328 MDC_ECG_ELEC_POTL (FHIR's SampledData ECG example). */
  ecgPotential: { system: MDC, code: '131328', display: 'MDC_ECG_ELEC_POTL' },
  /** MDC 131330 MDC_ECG_ELEC_POTL_II: lead II (MIT-BIH's MLII and single-lead front ends). */
  ecgLeadII: { system: MDC, code: '131330', display: 'MDC_ECG_ELEC_POTL_II' },
  /** SNOMED CT 49436004 Atrial fibrillation (disorder). */
  atrialFibrillation: { system: SNOMED, code: '49436004', display: 'Atrial fibrillation' },
  /** SNOMED CT 37931006 Auscultation (procedure): the method of a heart-sound screening. */
  auscultation: { system: SNOMED, code: '37931006', display: 'Auscultation' },
  /** SNOMED CT 88610006 Heart murmur (finding). */
  heartMurmur: { system: SNOMED, code: '88610006', display: 'Heart murmur' },
  heartSoundScreening: { system: MEDGE_CODES, code: 'heart-sound-screening', display: 'Heart sound screening (automated, decision support)' },
  ecgFinding: { system: MEDGE_CODES, code: 'ecg-finding', display: 'ECG finding (automated, decision support)' },
  glucoseFinding: { system: MEDGE_CODES, code: 'glucose-finding', display: 'Glucose finding (automated, decision support)' },
  finding: { system: MEDGE_CODES, code: 'finding', display: 'Automated finding (decision support)' },
  probability: { system: MEDGE_CODES, code: 'probability', display: 'Model probability' },
  inputQuality: { system: MEDGE_CODES, code: 'input-quality', display: 'Input signal quality (0-1)' },
  sessionReport: { system: MEDGE_CODES, code: 'device-session', display: 'Point-of-care device session' },
} satisfies Record<string, Coding>);

export const CATEGORY = Object.freeze({
  vitalSigns: { system: OBSERVATION_CATEGORY, code: 'vital-signs', display: 'Vital Signs' },
  laboratory: { system: OBSERVATION_CATEGORY, code: 'laboratory', display: 'Laboratory' },
  procedure: { system: OBSERVATION_CATEGORY, code: 'procedure', display: 'Procedure' },
  exam: { system: OBSERVATION_CATEGORY, code: 'exam', display: 'Exam' },
} satisfies Record<string, Coding>);

export const INTERPRETATIONS = Object.freeze({
  normal: { system: INTERPRETATION, code: 'N', display: 'Normal' },
  abnormal: { system: INTERPRETATION, code: 'A', display: 'Abnormal' },
  low: { system: INTERPRETATION, code: 'L', display: 'Low' },
  high: { system: INTERPRETATION, code: 'H', display: 'High' },
} satisfies Record<string, Coding>);

/** The sentence every exported finding carries. */
export const DECISION_SUPPORT_NOTE = 'Decision support from an automated algorithm on a point-of-care device; not a diagnosis. Review by a clinician.';
