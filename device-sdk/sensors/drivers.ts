/** The drivers medge ships, one line each. */
import { BLE_CGM_DRIVER } from './ble-cgm.js';
import { BLE_GLUCOSE_METER_DRIVER } from './ble-glucose-meter.js';
import { BLE_HEART_RATE_DRIVER } from './ble-heart-rate.js';
import { FIRMATA_ECG_DRIVER } from './firmata-ecg.js';
import { SERIAL_ECG_DRIVER, SERIAL_STETHOSCOPE_DRIVER } from './serial-stream.js';
import type { DriverDescriptor } from './types.js';

export const BUILTIN_DRIVERS: readonly DriverDescriptor<object>[] = [
  // serial-ecg, serial-stethoscope, firmata-ecg: device-sdk/sensors/serial-*.ts, firmata-*.ts
  SERIAL_ECG_DRIVER,
  SERIAL_STETHOSCOPE_DRIVER,
  FIRMATA_ECG_DRIVER,
  // ble-glucose-meter, ble-cgm, ble-heart-rate: device-sdk/sensors/ble-*.ts
  BLE_GLUCOSE_METER_DRIVER,
  BLE_CGM_DRIVER,
  BLE_HEART_RATE_DRIVER,
];
