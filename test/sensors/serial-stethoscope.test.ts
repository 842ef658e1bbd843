/** Contract of the `serial-stethoscope` driver: PCM at 4 kHz, one channel, arbitrary units, over the simulated device on a pty. */
import { serialStreamContract } from './serial-stream.contract.js';

serialStreamContract({ driver: 'serial-stethoscope', deviceType: 'pcg', channels: 1, rateHz: 4000, unit: 'au', gain: 32768, seconds: 6, speed: 6 });
