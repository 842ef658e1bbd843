import { createServer, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';

/**
 * The embedded MQTT broker (aedes, MQTT 3.1.1) on a TCP port. `stop()` drops every connection and
 * forgets every session, as a broker restart without persistence does; `start()` can follow again
 * on the same port (that is how `medge demo --chaos` restarts it).
 */
export class EmbeddedBroker {
  readonly host: string;
  private portValue: number;
  private broker: Aedes | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(options: { port?: number; host?: string } = {}) {
    this.portValue = options.port ?? 1883;
    this.host = options.host ?? '127.0.0.1';
  }

  get port(): number {
    return this.portValue;
  }

  get url(): string {
    return `mqtt://${this.host}:${this.portValue}`;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const broker = await Aedes.createBroker();
    // noDelay: MQTT is many small request/response packets; Nagle's algorithm would hold each PUBACK back.
    const server = createServer({ noDelay: true }, (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      broker.handle(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.portValue, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address && typeof address === 'object') this.portValue = address.port;
    this.broker = broker;
    this.server = server;
  }

  async stop(): Promise<void> {
    const { server, broker } = this;
    this.server = undefined;
    this.broker = undefined;
    if (!server || !broker) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await closed;
  }
}
