/** The drivers medge ships, one line each. */
import type { DriverDescriptor } from './types.js';

export const BUILTIN_DRIVERS: readonly DriverDescriptor<object>[] = [
  // serial-ecg, serial-stethoscope, firmata-ecg: device-sdk/sensors/serial-*.ts, firmata-*.ts
  // ble-glucose-meter, ble-cgm, ble-heart-rate: device-sdk/sensors/ble-*.ts
];
