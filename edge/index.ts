export { EmbeddedBroker } from './broker.js';
export { DEFAULT_EDGE_OPTIONS, EdgeNode, type EdgeNodeOptions } from './edge-node.js';
export { type CommitInput, type CommitResult, EDGE_MIGRATIONS, type EdgeStats, EdgeStore, edgeDatabasePath, readEdgeStats } from './edge-store.js';
export { type AckPublisher, Ingest, type IngestOutcome } from './ingest.js';
