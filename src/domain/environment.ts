import { Schema } from "effect"

export const environments = ["production", "test", "local"] as const

export const Environment = Schema.Literal(...environments)
export type Environment = typeof Environment.Type

/** The variable that selects the environment; read from the process environment only. */
export const environmentVariable = "ETL_ENVIRONMENT"

/** The four connections the tool holds, named as a person would name them in an error. */
export const DatabaseRole = Schema.Literal("source", "source-writer", "replication", "analytics")
export type DatabaseRole = typeof DatabaseRole.Type

/** The three places a table lives: the clinic's source, its replica, and raw in analytics. */
export type Stage = "source" | "replication" | "analytics"
