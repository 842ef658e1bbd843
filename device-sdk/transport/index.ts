export {
  type ByteTransport,
  type ByteTransportEvents,
  isCanceled,
  TRANSPORT_ERROR_CODES,
  TRANSPORT_KINDS,
  TransportError,
  type TransportErrorCode,
  type TransportErrorOptions,
  type TransportInfo,
  type TransportKind,
  type TransportState,
} from './byte-transport.js';
export {
  createMemoryTransportPair,
  DEFAULT_MEMORY_TRANSPORT_PAIR_OPTIONS,
  MemoryTransport,
  type MemoryTransportPair,
  type MemoryTransportPairOptions,
  randomSplitter,
} from './memory-transport.js';
export {
  DEFAULT_SERIAL_TRANSPORT_OPTIONS,
  isDisconnectError,
  type SerialPortClass,
  type SerialPortConstructorOptions,
  type SerialPortLike,
  SerialTransport,
  type SerialTransportOptions,
} from './serial-transport.js';
export { HangupError, withUnixIoFixes } from './unix-io-binding.js';
export {
  DEFAULT_TRANSPORT_SUPERVISOR_OPTIONS,
  type RetryInfo,
  type SupervisorState,
  TransportSupervisor,
  type TransportSupervisorEvents,
  type TransportSupervisorOptions,
} from './supervisor.js';
export type { IoBoard, IoBoardEvents, IoBoardFactory, IoBoardFirmware, IoBoardOptions } from './firmata.js';
export { createJohnnyFiveBoard, DEFAULT_IO_BOARD_OPTIONS, JohnnyFiveBoard } from './firmata-johnny-five.js';
