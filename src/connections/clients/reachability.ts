import { Duration, Effect, Redacted, Ref, Schedule } from "effect"
import { ConnectionError } from "../../domain/errors.ts"
import { errorCode, propertyOf } from "../../domain/unknownValues.ts"
import { tlsHint } from "../../domain/connections/tls.ts"
import type { ConnectionPolicy, DatabaseSettings } from "../EtlSettings.ts"

/** A driver's failure to connect or answer, before it becomes a ConnectionError. */
export interface DriverFailure {
  readonly code: string | undefined
  readonly message: string
  /** mysql2's mark of an error that ended the connection. */
  readonly fatal?: boolean
}

export const driverFailure = (cause: unknown): DriverFailure => {
  if (cause instanceof Error) {
    return { code: errorCode(cause), message: cause.message, fatal: propertyOf(cause, "fatal") === true }
  }
  return { code: undefined, message: String(cause) }
}

/** Failures worth another attempt: the server was down, busy or cut us off. Bad credentials are not. */
const transientCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "ER_CON_COUNT_ERROR",
  "CONNECT_TIMEOUT",
  "57P01", // PostgreSQL: the server was shut down by an administrator
  "57P02", // PostgreSQL: crash shutdown
  "57P03", // PostgreSQL: the server is starting up or shutting down
  "53300", // PostgreSQL: too many connections
  "08000", // PostgreSQL: connection exception
  "08003", // PostgreSQL: connection does not exist
  "08006" // PostgreSQL: connection failure
])

/** node-postgres reports a connection that ends under it without a code. */
const lostConnection = /Connection terminated|connection error|Client has encountered a connection error/i

/**
 * mysql2 gives every failed TLS handshake its own code, HANDSHAKE_SSL_ERROR, a connection reset as much as a
 * certificate refused: only the text tells the network's failure from the certificate's.
 */
const lostInHandshake =
  /\b(ECONNRESET|EPIPE|ETIMEDOUT)\b|socket disconnected before secure TLS connection|socket hang up/i

/**
 * A fatal error without a server code is a connection that is already gone (a pool can hand one out after a
 * network blip): another connection may well work. Refused credentials come with a code and are not retried.
 */
export const isTransient = (failure: DriverFailure): boolean =>
  failure.code === "HANDSHAKE_SSL_ERROR"
    ? lostInHandshake.test(failure.message)
    : failure.code !== undefined
      ? transientCodes.has(failure.code)
      : failure.fatal === true || lostConnection.test(failure.message)

/** Drivers sometimes echo connection strings; a secret must never reach a message. */
export const scrub = (text: string, password: Redacted.Redacted<string>): string => {
  const secret = Redacted.value(password)
  return secret.length >= 3 ? text.split(secret).join("<redacted>") : text
}

/**
 * Runs a driver's round trip (typically `SELECT VERSION()`) until it answers, with a timeout per attempt and a
 * bounded, jittered exponential backoff between transient failures. Gives up as a ConnectionError that names the
 * database role, host and port.
 */
export const untilReachable = <A>(
  settings: DatabaseSettings,
  policy: ConnectionPolicy,
  roundTrip: Effect.Effect<A, DriverFailure>
): Effect.Effect<A, ConnectionError> =>
  Effect.gen(function* () {
    const attempts = yield* Ref.make(0)
    const timeoutFailure: DriverFailure = {
      code: "CONNECT_TIMEOUT",
      message: `no answer within ${Duration.format(policy.connectTimeout)}`
    }
    const attempt = Ref.update(attempts, (n) => n + 1).pipe(
      Effect.zipRight(roundTrip),
      Effect.timeoutFail({ duration: policy.connectTimeout, onTimeout: () => timeoutFailure })
    )
    const backoff = Schedule.exponential(Duration.millis(250), 2).pipe(
      Schedule.jittered,
      Schedule.intersect(Schedule.recurs(policy.attempts - 1))
    )
    return yield* attempt.pipe(
      Effect.retry({ schedule: backoff, while: isTransient }),
      Effect.catchAll((failure) =>
        Effect.flatMap(Ref.get(attempts), (n) => {
          const said = scrub(
            failure.code === undefined ? failure.message : `${failure.code}: ${failure.message}`,
            settings.password
          )
          const hint = tlsHint(settings.role, settings.tls, settings.host, failure)
          return Effect.fail(
            new ConnectionError({
              database: settings.role,
              host: settings.host,
              port: settings.port,
              name: settings.database,
              attempts: n,
              reason: hint === undefined ? said : `${hint} (${said})`
            })
          )
        })
      )
    )
  })
