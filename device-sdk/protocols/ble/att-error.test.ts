import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../errors.js';
import { attErrorFromBluez, attErrorName, bluezAttError, RACP_CCCD_IMPROPERLY_CONFIGURED, RACP_PROCEDURE_ALREADY_IN_PROGRESS } from './att-error.js';

describe('ATT error codes through BlueZ D-Bus errors', () => {
  it('reads the code of the generic BlueZ error (src/gatt-client.c create_gatt_dbus_error, default case)', () => {
    // [D-Bus error name, message] -> ATT code
    const vectors: [string, string, number][] = [
      ['org.bluez.Error.Failed', 'Operation failed with ATT error: 0x80', 0x80], // GLS procedure already in progress
      ['org.bluez.Error.Failed', 'Operation failed with ATT error: 0x81', 0x81], // GLS CCCD improperly configured
      ['org.bluez.Error.Failed', 'Operation failed with ATT error: 0xfe', 0xfe], // CGMS (CSS) procedure already in progress
      ['org.bluez.Error.Failed', 'Operation failed with ATT error: 0xFD', 0xfd],
      ['org.bluez.Error.Failed', 'Operation failed with ATT error: 0x0e', 0x0e], // unlikely error
      ['org.bluez.Error', 'Operation failed with ATT error: 0x80', 0x80], // BlueZ before 5.41 (g_dbus_create_error with ERROR_INTERFACE)
    ];
    for (const [name, text, code] of vectors) expect(attErrorFromBluez(name, text), text).toBe(code);
    // QA re-check: 0x00 is no ATT error code; a service no table knows is no crash.
    expect(attErrorFromBluez('org.bluez.Error.Failed', 'Operation failed with ATT error: 0x00')).toBeUndefined();
    expect(attErrorFromBluez('org.bluez.ErrorX', 'Operation failed with ATT error: 0x80')).toBeUndefined();
    expect(attErrorName(0x80, 'bogus' as 'glucose')).toBeUndefined();
  });

  it('reads the codes BlueZ names, and none where a name stands for several codes or for no ATT error', () => {
    expect(attErrorFromBluez('org.bluez.Error.NotPermitted', 'Read not permitted')).toBe(0x02);
    expect(attErrorFromBluez('org.bluez.Error.NotPermitted', 'Write not permitted')).toBe(0x03);
    expect(attErrorFromBluez('org.bluez.Error.NotSupported', 'Operation is not supported')).toBe(0x06);
    expect(attErrorFromBluez('org.bluez.Error.InvalidArguments', 'Invalid offset')).toBe(0x07);
    expect(attErrorFromBluez('org.bluez.Error.NotAuthorized', 'Operation Not Authorized')).toBe(0x08);
    expect(attErrorFromBluez('org.bluez.Error.InvalidArguments', 'Invalid Length')).toBe(0x0d);
    // 0x05, 0x0c and 0x0f all read "Not paired"; the rest are no ATT error at all.
    expect(attErrorFromBluez('org.bluez.Error.NotPermitted', 'Not paired')).toBeUndefined();
    expect(attErrorFromBluez('org.bluez.Error.Failed', 'Operation failed')).toBeUndefined();
    expect(attErrorFromBluez('org.bluez.Error.Failed', 'Not connected')).toBeUndefined();
    expect(attErrorFromBluez('org.bluez.Error.InProgress', 'In Progress')).toBeUndefined();
    expect(attErrorFromBluez('org.bluez.Error.Failed', 'Operation failed with ATT error: 0x800')).toBeUndefined();
    expect(attErrorFromBluez('org.freedesktop.DBus.Error.NoReply', 'Operation failed with ATT error: 0x80')).toBeUndefined();
    expect(attErrorFromBluez(undefined as unknown as string, 'x')).toBeUndefined();
  });

  it('writes the error BlueZ sends for a code, which reads back as that code', () => {
    expect(bluezAttError(0x80)).toEqual({ name: 'org.bluez.Error.Failed', text: 'Operation failed with ATT error: 0x80' });
    expect(bluezAttError(0x03)).toEqual({ name: 'org.bluez.Error.NotPermitted', text: 'Write not permitted' });
    for (const code of [0x02, 0x03, 0x06, 0x07, 0x08, 0x0d, 0x0e, 0x80, 0x81, 0x9f, 0xfd, 0xfe, 0xff]) {
      const { name, text } = bluezAttError(code);
      expect(attErrorFromBluez(name, text)).toBe(code);
    }
    expect(() => bluezAttError(0)).toThrow(ConfigError);
    expect(() => bluezAttError(256)).toThrow(ConfigError);
  });

  it('names the codes per service: GLS and CGMS give 0x80 and 0x81 different meanings', () => {
    expect(attErrorName(0x80, 'glucose')).toBe('procedure-already-in-progress');
    expect(attErrorName(0x81, 'glucose')).toBe('cccd-improperly-configured');
    expect(attErrorName(0x80, 'cgm')).toBe('missing-crc');
    expect(attErrorName(0x81, 'cgm')).toBe('invalid-crc');
    expect(attErrorName(0xfe, 'cgm')).toBe('procedure-already-in-progress');
    expect(attErrorName(0xfd, 'glucose')).toBe('cccd-improperly-configured');
    expect(attErrorName(0x82, 'glucose')).toBeUndefined();
    expect(attErrorName(0x03, 'glucose')).toBeUndefined();
    expect(RACP_PROCEDURE_ALREADY_IN_PROGRESS).toEqual({ glucose: 0x80, cgm: 0xfe });
    expect(RACP_CCCD_IMPROPERLY_CONFIGURED).toEqual({ glucose: 0x81, cgm: 0xfd });
  });
});
