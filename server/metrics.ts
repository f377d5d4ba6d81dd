import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { decodeStats } from './updates.ts'

/** Prometheus metrics of one server instance (its own registry, so tests can run several). */
export function createMetrics() {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 })
  const endpoint = ['endpoint'] as const
  const collectors: (() => void)[] = []
  const collect = () => collectors.forEach((fn) => fn())
  return {
    /** Registers `fn` to refresh gauges just before /metrics is read. */
    onCollect(fn: () => void): void {
      collectors.push(fn)
    },
    syncClients: new Gauge({ name: 'murmur_sync_clients', help: 'Sync sockets by link mode: backup (murmur, peers direct), relay (murmur, needs the server to forward), stock (plain y-websocket, relayed)', labelNames: ['mode'] as const, registers: [registry], collect }),
    reportedPeers: new Gauge({ name: 'murmur_sync_reported_peers', help: 'Peers the connected murmur clients show, by how they reach them (direct WebRTC or via the server), summed over clients', labelNames: ['via'] as const, registers: [registry], collect }),
    redundantUploads: new Counter({ name: 'murmur_sync_redundant_uploads_total', help: 'Live update messages (not a sync handshake) that brought the server nothing it did not have, by link mode of the sender: backup-only links upload a peer\'s change only when the server lacks it, so theirs stay near zero', labelNames: ['mode'] as const, registers: [registry] }),
    updateBytes: new Counter({ name: 'murmur_sync_update_bytes_total', help: 'Update bytes on /sync: uploaded (integrated from clients, the backup) and relayed (forwarded live to other clients)', labelNames: ['kind'] as const, registers: [registry] }),
    logEntryBytes: new Counter({ name: 'murmur_log_bytes_total', help: 'Ciphertext bytes on /log: appended (stored from clients), relayed (entries forwarded live to other clients), awareness (presence forwarded)', labelNames: ['kind'] as const, registers: [registry] }),
    registry,
    connections: new Gauge({ name: 'murmur_connections', help: 'Open WebSocket connections', labelNames: endpoint, registers: [registry] }),
    rooms: new Gauge({ name: 'murmur_rooms_loaded', help: 'Documents loaded in memory', registers: [registry] }),
    topics: new Gauge({ name: 'murmur_signaling_topics', help: 'Signaling topics with at least one subscriber', registers: [registry] }),
    messages: new Counter({ name: 'murmur_messages_total', help: 'WebSocket messages', labelNames: ['endpoint', 'direction'] as const, registers: [registry] }),
    bytes: new Counter({ name: 'murmur_bytes_total', help: 'WebSocket payload bytes', labelNames: ['endpoint', 'direction'] as const, registers: [registry] }),
    closes: new Counter({ name: 'murmur_closed_by_server_total', help: 'Sockets closed by the server, by close code', labelNames: ['endpoint', 'code'] as const, registers: [registry] }),
    persistedUpdates: new Counter({ name: 'murmur_persisted_updates_total', help: 'Yjs updates committed to storage', registers: [registry] }),
    compactions: new Counter({ name: 'murmur_compactions_total', help: 'Document logs merged into a snapshot', registers: [registry] }),
    decodedUpdateBytes: new Counter({
      name: 'murmur_update_bytes_decoded_total',
      help: 'Bytes of client updates decoded for validation (each received update once; more would mean re-decoding held updates)',
      registers: [registry],
      collect() {
        this.reset()
        this.inc(decodeStats.bytes)
      },
    }),
    throttled: new Counter({ name: 'murmur_throttled_total', help: 'Times a socket went over its byte budget and was not read until it refilled', labelNames: endpoint, registers: [registry] }),
    heldBytes: new Gauge({ name: 'murmur_held_update_bytes', help: 'Bytes of updates held for missing dependencies', registers: [registry] }),
    storageErrors: new Counter({ name: 'murmur_storage_errors_total', help: 'Failed storage operations', registers: [registry] }),
    overloaded: new Gauge({ name: 'murmur_overloaded', help: '1 while the server is over its lag or heap budget (sockets not read, new connections refused)', registers: [registry] }),
    overloadRefused: new Counter({ name: 'murmur_overload_refused_total', help: 'WebSocket upgrades refused with 503 while overloaded', registers: [registry] }),
    storageCommit: new Histogram({ name: 'murmur_storage_commit_seconds', help: 'Time each SQLite group commit took (transaction and fsync; on the writer thread unless --sqlite-writer main, then on the event loop)', buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1], registers: [registry] }),
    storageChecks: new Counter({ name: 'murmur_storage_checks_total', help: 'Storage writability probes run for /healthz (at most one per second)', registers: [registry] }),
  }
}

/** The metrics object passed to every server module. */
export type Metrics = ReturnType<typeof createMetrics>
