// The simulated BlueZ and its GATT peripherals: see bluez.ts for the programmatic API.
export {
  DEFAULT_SIMULATED_BLUEZ_OPTIONS,
  type SimCharacteristicFlag,
  type SimCharacteristicSpec,
  type SimDeviceStatus,
  type SimPeripheral,
  type SimPeripheralLink,
  type SimServiceSpec,
  type SimulatedBluez,
  type SimulatedBluezOptions,
  startSimulatedBluez,
} from './bluez.js';
export { findDbusDaemon, type PrivateDbus, startPrivateDbus } from './dbus-daemon.js';
export { SIM_SERIAL_REFUSED, SimPeripheralBase, type SimPeripheralFaults, type SimSerialNumberFaults, type SimSerialRead, simDeviceInformationService } from './peripheral.js';
export {
  DEFAULT_SIM_GLUCOSE_METER_OPTIONS,
  defaultSimMeterInformation,
  GLUCOSE_SERVICE_UUID,
  SimGlucoseMeter,
  type SimGlucoseMeterFaults,
  type SimGlucoseMeterOptions,
  type SimGlucoseMeterStats,
  type SimGlucoseRecord,
  type SimRacpFilterType,
  type SimRacpOperator,
} from './glucose-meter.js';
export { CGM_SERVICE_UUID, DEFAULT_SIM_CGM_OPTIONS, SimCgm, type SimCgmFaults, type SimCgmOptions } from './cgm.js';
export { BODY_SENSOR_LOCATION_UUID, HEART_RATE_CONTROL_POINT_UUID, HEART_RATE_SERVICE_UUID, SimHeartRateStrap, type SimHeartRateStrapOptions } from './heart-rate.js';
