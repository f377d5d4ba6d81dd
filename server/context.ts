import type { Logger } from 'pino'
import type { Config } from './config.ts'
import type { Metrics } from './metrics.ts'
import type { LoadGuard } from './load-guard.ts'

/** What every server module is given: configuration, a logger and the metrics. */
export interface ServerContext {
  config: Config
  log: Logger
  metrics: Metrics
  /** The server-wide overload budget (absent in tests that build modules by hand). */
  loadGuard?: LoadGuard
}
