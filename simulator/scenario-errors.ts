import { MedgeError } from '../device-sdk/errors.js';

/** Why a scenario cannot run on this machine: a system program is missing (`program`). */
export class SimulatorUnavailableError extends MedgeError {
  readonly program: string;
  constructor(program: string, hint: string) {
    super('simulator-unavailable', `${program} is needed for the simulated devices and was not found; ${hint}`);
    this.program = program;
  }
}
