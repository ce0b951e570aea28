import { describe, expect, it } from "@effect/vitest"
import { connectionPlan } from "../../src/domain/connections/connectionBudget.ts"

const mysql = { host: "db", port: 3306 }
const replicaHost = { host: "replica", port: 3306 }
const postgres = { host: "db", port: 5432 }

describe("the connection budget", () => {
  it("servers of their own: each pipeline database gets the whole budget, the writer one of the source's", () => {
    const plan = connectionPlan({
      source: mysql,
      replication: replicaHost,
      analytics: postgres,
      maxConnectionsPerServer: 8,
      tableConcurrency: 4
    })
    expect(plan).toEqual({ pools: { source: 7, sourceWriter: 1, replication: 8, analytics: 8 }, tableConcurrency: 4 })
  })

  it("source and replica on one server share its budget; no server is given more than it", () => {
    const plan = connectionPlan({
      source: mysql,
      replication: mysql,
      analytics: postgres,
      maxConnectionsPerServer: 8,
      tableConcurrency: 3
    })
    expect(plan.pools).toEqual({ source: 3, sourceWriter: 1, replication: 4, analytics: 8 })
    expect(plan.pools.source + plan.pools.sourceWriter + plan.pools.replication).toBe(8)
    expect(plan.tableConcurrency).toBe(3)
  })

  it("more tables at once than a pool can hold locks for are lowered, and the reason names both settings", () => {
    const plan = connectionPlan({
      source: mysql,
      replication: mysql,
      analytics: postgres,
      maxConnectionsPerServer: 8,
      tableConcurrency: 8
    })
    expect(plan.tableConcurrency).toBe(3)
    expect(plan.lowered).toBe(
      "ETL_TABLE_CONCURRENCY=8 lowered to 3: each table in flight holds a replica connection for its locks and needs one more to work, and the replica shares db:3306 with the source and gets 4 of ETL_MAX_CONNECTIONS=8"
    )
  })

  it("the smallest budget still runs one table", () => {
    const plan = connectionPlan({
      source: mysql,
      replication: mysql,
      analytics: postgres,
      maxConnectionsPerServer: 4,
      tableConcurrency: 2
    })
    expect(plan.pools).toEqual({ source: 1, sourceWriter: 1, replication: 2, analytics: 4 })
    expect(plan.tableConcurrency).toBe(1)
  })
})
