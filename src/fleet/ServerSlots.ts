import { Context, Effect, Layer, Option, type Scope } from "effect"
import type { SqlError } from "@effect/sql/SqlError"
import type { Settings } from "../connections/EtlSettings.ts"
import { FleetConfig } from "./FleetConfig.ts"
import { FleetStorage } from "./FleetStorage.ts"

/**
 * Clinics often share a MySQL server: all runners together never open more than the fleet's `max_connections` to
 * one server. A clinic in flight holds one slot on each server it uses, worth its own `max_connections`; a slot is a
 * PostgreSQL advisory lock in the fleet's storage, held by a session of the runner that holds it, so a runner that
 * dies gives its slots back with its sessions.
 */
export interface ServerSlotsService {
  /** Holds a slot on every server of the clinic for the scope, waiting while all of one's slots are taken. */
  readonly hold: (clinic: string, settings: Settings) => Effect.Effect<void, SqlError, Scope.Scope>
}

export class ServerSlots extends Context.Tag("opendental-etl/ServerSlots")<ServerSlots, ServerSlotsService>() {}

/** The servers a clinic's pipeline connects to, each once: a source and replica on one server share a slot. */
const serversOf = (settings: Settings) =>
  [...new Set([settings.source, settings.replication, settings.analytics].map((d) => `${d.host}:${d.port}`))].sort()

/** The lock key of a server's slots, hashed with its slot number into one advisory lock. */
const key = (server: string) => `opendental-etl:server:${server}`

export const make = Effect.gen(function* () {
  const { sql } = yield* FleetStorage
  const { fleet } = yield* FleetConfig
  const limit = fleet.limits.max_connections
  // One session holds every slot this runner takes: advisory locks are the session's, and a pooled connection
  // per slot would starve the cluster's own use of the pool.
  const session = yield* sql.reserve
  // The session would take a lock it holds again, so this runner's own slots are told apart here.
  const held = new Set<string>()
  const lock = yield* Effect.makeSemaphore(1)

  /** One slot of `server` for the scope. */
  const holdOne = (clinic: string, server: string, slots: number) =>
    Effect.gen(function* () {
      const take = Effect.gen(function* () {
        for (let slot = 0; slot < slots; slot++) {
          if (held.has(`${server}#${slot}`)) continue
          const [row] = yield* session.executeValues("SELECT pg_try_advisory_lock(hashtext($1), $2)", [
            key(server),
            slot
          ])
          if (row?.[0] === true) {
            held.add(`${server}#${slot}`)
            return Option.some(slot)
          }
        }
        return Option.none<number>()
      }).pipe(lock.withPermits(1))
      const acquire: Effect.Effect<number, SqlError> = Effect.flatMap(
        take,
        Option.match({
          onSome: Effect.succeed,
          onNone: () =>
            Effect.logInfo(`Clinic ${clinic} waits for a connection slot on ${server}`).pipe(
              Effect.zipRight(Effect.sleep("1 second")),
              Effect.zipRight(Effect.suspend(() => acquire))
            )
        })
      )
      const slot = yield* acquire
      yield* Effect.addFinalizer(() =>
        Effect.ignore(session.executeValues("SELECT pg_advisory_unlock(hashtext($1), $2)", [key(server), slot])).pipe(
          Effect.ensuring(Effect.sync(() => held.delete(`${server}#${slot}`))),
          lock.withPermits(1)
        )
      )
    })

  return {
    hold: (clinic, settings) => {
      const slots = Math.max(1, Math.floor(limit / settings.connection.maxConnectionsPerServer))
      return Effect.forEach(serversOf(settings), (server) => holdOne(clinic, server, slots), { discard: true })
    }
  } satisfies ServerSlotsService
})

export const layer = Layer.scoped(ServerSlots, make)
