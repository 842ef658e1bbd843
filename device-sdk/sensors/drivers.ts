/** The drivers medge ships, one line each. */
import { SERIAL_ECG_DRIVER, SERIAL_STETHOSCOPE_DRIVER } from './serial-stream.js';
import type { DriverDescriptor } from './types.js';

export const BUILTIN_DRIVERS: readonly DriverDescriptor<object>[] = [
  // serial-ecg, serial-stethoscope, firmata-ecg: device-sdk/sensors/serial-*.ts, firmata-*.ts
  SERIAL_ECG_DRIVER,
  SERIAL_STETHOSCOPE_DRIVER,
  // ble-glucose-meter, ble-cgm, ble-heart-rate: device-sdk/sensors/ble-*.ts
];
