/**
 * Common behaviour of the simulated GATT peripherals: the link the simulated BlueZ attaches,
 * notifications with the duplicate-notification fault, raw bytes for bad-bytes tests, slow devices.
 */
import { MedgeError } from '../../device-sdk/errors.js';
import { DEVICE_INFORMATION_FIELDS, DEVICE_INFORMATION_SERVICE_UUID, type DeviceInformation, encodeDisString } from '../../device-sdk/protocols/ble/device-information.js';
import type { SimPeripheral, SimPeripheralLink, SimServiceSpec } from './bluez.js';

/** Faults every simulated peripheral supports. Mutable at any time: the next notification sees the change. */
export interface SimPeripheralFaults {
  /** Every n-th notification is sent twice in a row (0 = never). */
  duplicateEvery: number;
  /** Slow device: wait this long before each notification (ms). */
  notifyDelayMs: number;
}

/** Faults of a peripheral's Device Information Serial Number String (`simDeviceInformationService`). Mutable at any time. */
export interface SimSerialNumberFaults {
  /** A Serial Number String read fails (an error reply). */
  serialNumberRefused: boolean;
  /**
   * The next Serial Number String reads answer these, one per read, instead of the serial: a string (a corrupted read,
   * or a placeholder) or `SIM_SERIAL_REFUSED` (that read fails with an error reply).
   */
  serialNumberReads: SimSerialRead[];
}

/** An entry of `SimSerialNumberFaults.serialNumberReads`: that read is refused (an error reply). */
export const SIM_SERIAL_REFUSED = Object.freeze({ refused: true as const });
/** One scripted Serial Number String read: the text answered, or `SIM_SERIAL_REFUSED`. */
export type SimSerialRead = string | typeof SIM_SERIAL_REFUSED;

export function delay(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

/**
 * A Device Information Service 0x180A (DIS 1.1) telling `info`: Manufacturer Name 0x2A29, Model Number 0x2A24,
 * Serial Number 0x2A25, Firmware Revision 0x2A26, each a read of UTF-8 text; a field that is undefined is left
 * out of the GATT table. A read of the serial fails with an error reply while `serialRefused()` holds, and answers what
 * `serialRead()` gives instead of the serial when it gives a string (a corrupted read); it fails when that gives
 * `SIM_SERIAL_REFUSED`.
 */
export function simDeviceInformationService(info: Readonly<DeviceInformation>, serialRefused: () => boolean = () => false, serialRead: () => SimSerialRead | undefined = () => undefined): SimServiceSpec {
  return {
    uuid: DEVICE_INFORMATION_SERVICE_UUID,
    characteristics: (Object.entries(DEVICE_INFORMATION_FIELDS) as [keyof DeviceInformation, number][])
      .filter(([field]) => info[field] !== undefined)
      .map(([field, uuid]) => ({
        uuid,
        flags: ['read'] as const,
        onRead: () => {
          if (field === 'serial' && serialRefused()) throw new Error('Insufficient Authentication');
          const scripted = field === 'serial' ? serialRead() : undefined;
          if (typeof scripted === 'object') throw new Error('Insufficient Authentication'); // SIM_SERIAL_REFUSED
          return encodeDisString(scripted ?? (info[field] as string), `/deviceInformation/${field}`);
        },
      })),
  };
}

export abstract class SimPeripheralBase implements SimPeripheral {
  readonly address: string;
  readonly name: string;
  abstract readonly services: readonly SimServiceSpec[];
  abstract readonly faults: SimPeripheralFaults;
  /** Notifications actually sent (duplicates included). */
  notificationsSent = 0;
  /** Extra copies sent by the `duplicateEvery` fault. */
  duplicatesSent = 0;
  private link: SimPeripheralLink | undefined;
  private counter = 0;

  constructor(address: string, name: string) {
    this.address = address.toUpperCase();
    this.name = name;
  }

  attach(link: SimPeripheralLink): void {
    this.link = link;
  }

  get connected(): boolean {
    return this.link?.connected ?? false;
  }

  isNotifying(uuid: number | string): boolean {
    return this.link?.isNotifying(uuid) ?? false;
  }

  /** Sends `bytes` as a notification/indication on `uuid` with the duplicate fault applied; false when nothing could be sent. */
  async notify(uuid: number | string, bytes: Uint8Array): Promise<boolean> {
    await delay(this.faults.notifyDelayMs);
    const link = this.requireLink();
    if (!link.notify(uuid, bytes)) return false;
    this.notificationsSent += 1;
    this.counter += 1;
    if (this.faults.duplicateEvery > 0 && this.counter % this.faults.duplicateEvery === 0 && link.notify(uuid, bytes)) {
      this.notificationsSent += 1;
      this.duplicatesSent += 1;
    }
    return true;
  }

  /** Any bytes on any characteristic, bypassing the codecs (for bad-bytes and quarantine tests). */
  async sendRaw(uuid: number | string, bytes: Uint8Array): Promise<boolean> {
    await delay(this.faults.notifyDelayMs);
    return this.requireLink().notify(uuid, bytes);
  }

  /** Link loss initiated by the device. */
  async dropLink(): Promise<void> {
    await this.requireLink().dropLink();
  }

  private requireLink(): SimPeripheralLink {
    if (!this.link) throw new MedgeError('sim-bluez', `${this.name} ${this.address} is not attached to a simulated BlueZ (pass it to startSimulatedBluez)`);
    return this.link;
  }
}
