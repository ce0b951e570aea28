/** Connections the tool opens to one server at most, unless ETL_MAX_CONNECTIONS says otherwise. */
export const defaultMaxConnectionsPerServer = 8

/** The smallest budget that leaves a server shared by source and replica a lock connection and a working one. */
export const minimumConnectionsPerServer = 4

export interface Server {
  readonly host: string
  readonly port: number
}

export interface BudgetInputs {
  readonly source: Server
  readonly replication: Server
  readonly analytics: Server
  readonly maxConnectionsPerServer: number
  readonly tableConcurrency: number
}

/** Pool sizes per database and the tables that may run at once within them. */
export interface ConnectionPlan {
  readonly pools: {
    readonly source: number
    readonly sourceWriter: number
    readonly replication: number
    readonly analytics: number
  }
  readonly tableConcurrency: number
  /** Why fewer tables run at once than ETL_TABLE_CONCURRENCY asked for, when they do. */
  readonly lowered?: string
}

type PipelineDatabase = "source" | "replication" | "analytics"

const label = (server: Server) => `${server.host}:${server.port}`

/**
 * How the budget of each server is shared. The seeder's writer (validate only) is the source's server and gets one
 * connection: it writes one statement at a time. The rest is split evenly between the pipeline's databases on that
 * server, a remainder going first to the replica, then analytics: they hold each table's locks.
 *
 * A table in flight holds one replica connection and one analytics session for its locks the whole time, and takes
 * others from the same pools only for one statement or transaction at a time; so a pool one larger than the tables
 * in flight always has a connection to lend and no table can wait forever. Within that, a whole load's
 * `ETL_LOAD_PARALLELISM` readers and writers queue for connections rather than open more.
 */
export const connectionPlan = (inputs: BudgetInputs): ConnectionPlan => {
  const servers = new Map<string, Array<PipelineDatabase>>()
  const order: ReadonlyArray<PipelineDatabase> = ["replication", "analytics", "source"]
  for (const database of order) {
    const key = label(inputs[database])
    servers.set(key, [...(servers.get(key) ?? []), database])
  }
  const pools = { source: 0, sourceWriter: 1, replication: 0, analytics: 0 }
  for (const [key, databases] of servers) {
    const withWriter = key === label(inputs.source)
    const rest = inputs.maxConnectionsPerServer - (withWriter ? 1 : 0)
    databases.forEach((database, i) => {
      pools[database] = Math.max(1, Math.floor(rest / databases.length) + (i < rest % databases.length ? 1 : 0))
    })
  }
  const lockHolder: PipelineDatabase = pools.replication <= pools.analytics ? "replication" : "analytics"
  const limit = Math.max(1, pools[lockHolder] - 1)
  if (inputs.tableConcurrency <= limit) return { pools, tableConcurrency: inputs.tableConcurrency }
  const shared = servers.get(label(inputs[lockHolder])) ?? []
  const sharing =
    shared.length > 1
      ? ` shares ${label(inputs[lockHolder])} with the ${shared.filter((d) => d !== lockHolder).join(" and ")} and`
      : ""
  return {
    pools,
    tableConcurrency: limit,
    lowered:
      `ETL_TABLE_CONCURRENCY=${inputs.tableConcurrency} lowered to ${limit}: each table in flight holds a ` +
      `${lockHolder === "replication" ? "replica" : "analytics"} connection for its locks and needs one more to ` +
      `work, and the ${lockHolder === "replication" ? "replica" : "analytics database"}${sharing} gets ` +
      `${pools[lockHolder]} of ETL_MAX_CONNECTIONS=${inputs.maxConnectionsPerServer}`
  }
}
