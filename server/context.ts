import type { Logger } from 'pino'
import type { Config } from './config.ts'
import type { Metrics } from './metrics.ts'

/** What every server module is given: configuration, a logger and the metrics. */
export interface ServerContext {
  config: Config
  log: Logger
  metrics: Metrics
}
