import { describe, expect, it } from 'vitest';
import { chooseDemoDevices } from '../../firmware/demo.js';
import { findDbusDaemon } from '../../simulator/bluez/index.js';
import { findSocat } from '../helpers/pty.js';
import { MITDB, missingNote, SHARED_DATA, sharedDataRuns } from '../helpers/shared-data.js';

const tools = findSocat() !== undefined && findDbusDaemon() !== undefined;

describe('medge demo device choice', () => {
  it('falls back to the in-process generators and says why when the recordings are missing', () => {
    const d = chooseDemoDevices('/nonexistent/shared/data');
    expect(d.kind).toBe('in-process');
    if (d.kind === 'in-process') expect(d.reason).toMatch(tools ? /recordings .* are missing \(\/nonexistent\/shared\/data\/mitdb\/208\.hea\)/ : /is not installed/);
  });

  it.skipIf(!tools || !sharedDataRuns(MITDB))(`uses the simulator scenario when socat, dbus-daemon and the recordings are there${missingNote(MITDB)}`, () => {
    const d = chooseDemoDevices(SHARED_DATA);
    expect(d.kind).toBe('simulator');
    if (d.kind === 'simulator') expect(d.scenario.devices.map((x) => x.driver)).toEqual(['serial-ecg', 'serial-stethoscope', 'ble-heart-rate', 'ble-glucose-meter', 'ble-cgm']);
  });
});
