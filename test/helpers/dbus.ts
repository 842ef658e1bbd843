// A private dbus-daemon for tests of the simulated BlueZ and the BLE transport.
//
//   const dbusFound = systemAvailable('dbus-daemon', findDbusDaemon() !== undefined, 'dbus-daemon');
//   describe.skipIf(!dbusFound)('... (needs dbus-daemon: apt-get install -y dbus-daemon)', () => { ... });
//
// `useSimulatedBluez()` starts one simulated BlueZ per test (on its own bus) and stops it after.
import { afterEach } from 'vitest';
import { findDbusDaemon, type SimPeripheral, type SimulatedBluez, type SimulatedBluezOptions, startSimulatedBluez } from '../../simulator/bluez/index.js';
import { systemAvailable } from './mosquitto.js';

/** True when dbus-daemon is installed; throws under MEDGE_REQUIRE_SYSTEM=1 when it is not. */
export function dbusDaemonAvailable(): boolean {
  return systemAvailable('dbus-daemon', findDbusDaemon() !== undefined, 'dbus-daemon');
}

/** A starter of simulated BlueZ instances, each stopped (bus and daemon) after the test that started it. */
export function useSimulatedBluez(): (devices: readonly SimPeripheral[], options?: Partial<SimulatedBluezOptions>) => Promise<SimulatedBluez> {
  const started: SimulatedBluez[] = [];
  afterEach(async () => {
    for (const b of started.splice(0)) await b.stop();
  });
  return async (devices, options = {}) => {
    const bluez = await startSimulatedBluez({ ...options, devices });
    started.push(bluez);
    return bluez;
  };
}
