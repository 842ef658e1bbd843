import { isRecordKind, type RecordKind } from '../records.js';

/** Topic prefix and version of the medge MQTT namespace. */
export const TOPIC_ROOT = 'medge/v1';

const SEGMENT = /^[A-Za-z0-9._-]{1,64}$/;

/** Site and device ids become topic segments: no `/`, `+`, `#` or empty values. */
export function isTopicSegment(value: string): boolean {
  return SEGMENT.test(value);
}

export function upTopic(site: string, deviceId: string, kind: RecordKind): string {
  return `${TOPIC_ROOT}/${site}/${deviceId}/up/${kind}`;
}

export function downTopic(site: string, deviceId: string, what: 'ack' | 'config' | 'model' | 'time' | 'command'): string {
  return `${TOPIC_ROOT}/${site}/${deviceId}/down/${what}`;
}

/** Every device's uplink, for the edge's ingest subscription. */
export const UP_WILDCARD = `${TOPIC_ROOT}/+/+/up/+`;

export interface ParsedUpTopic {
  site: string;
  deviceId: string;
  kind: RecordKind;
}

/** Parses `medge/v1/<site>/<deviceId>/up/<kind>`; undefined for anything else. */
export function parseUpTopic(topic: string): ParsedUpTopic | undefined {
  const parts = topic.split('/');
  if (parts.length !== 6 || `${parts[0]}/${parts[1]}` !== TOPIC_ROOT || parts[4] !== 'up') return undefined;
  const [, , site = '', deviceId = '', , kind = ''] = parts;
  if (!isTopicSegment(site) || !isTopicSegment(deviceId) || !isRecordKind(kind)) return undefined;
  return { site, deviceId, kind };
}
