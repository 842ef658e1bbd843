/** Contract of the `serial-ecg` driver: a 2-lead ECG at 360 Hz in mV over the simulated device on a pty. */
import { serialStreamContract } from './serial-stream.contract.js';

serialStreamContract({ driver: 'serial-ecg', deviceType: 'ecg', channels: 2, rateHz: 360, unit: 'mV', gain: 200, seconds: 20, speed: 20 });
