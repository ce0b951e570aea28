import { Effect } from "effect"
import * as net from "node:net"
import { setTimeout as delay } from "node:timers/promises"

/**
 * What the proxy does to traffic between a client and a database server on 127.0.0.1.
 * - `resetAfterBytes`: after `bytes` more bytes in one direction, every open connection is reset; then either the
 *   proxy passes traffic again (`thenRecover`) or refuses every new connection (the server stays down).
 * - `stallOn`: holds one statement (the one containing `pattern`) and everything after it on that connection, so a
 *   test knows which step the program is in while it waits.
 */
export type Fault =
  | { readonly _tag: "passThrough" }
  | { readonly _tag: "refuse" }
  | {
      readonly _tag: "resetAfterBytes"
      readonly bytes: number
      readonly thenRecover: boolean
      /** Which bytes count: sent to the server (writes) or sent back by it (reads). Default: to the server. */
      readonly direction?: "toServer" | "fromServer"
    }
  | { readonly _tag: "stall" }
  /** Every chunk, both ways, arrives `ms` later than it was sent (in order): a slow link. */
  | { readonly _tag: "latency"; readonly ms: number }
  /**
   * The connection that sends `pattern` to the server for the `occurrence`-th time (default the first, counted over
   * all connections) stalls from there on, that statement included; the others pass.
   */
  | { readonly _tag: "stallOn"; readonly pattern: string; readonly occurrence?: number }
  /** When a connection sends `pattern` (the `occurrence`-th time, default the first), every open connection is reset; then the proxy passes or refuses. */
  | { readonly _tag: "resetOn"; readonly pattern: string; readonly thenRecover: boolean; readonly occurrence?: number }

export interface FaultProxy {
  readonly host: string
  readonly port: number
  readonly setFault: (fault: Fault) => void
  /** How many connections the proxy has reset so far. */
  readonly resets: () => number
  /** Completes when a connection has stalled on a `stallOn` pattern. */
  readonly stalled: Effect.Effect<void>
  /** Resets the stalled connections: their statements fail as a lost connection would. */
  readonly releaseStalled: Effect.Effect<void>
}

interface Pair {
  readonly client: net.Socket
  readonly server: net.Socket
  stalled: boolean
  /** The end of what the client sent last, so a pattern split across two packets is still seen. */
  tail: string
}

/** A TCP proxy to `target` for the scope; its faults are switched by the test. */
export const makeFaultProxy = (target: { readonly host: string; readonly port: number }) =>
  Effect.acquireRelease(
    Effect.async<{ proxy: FaultProxy; close: () => Promise<void> }>((resume) => {
      let fault: Fault = { _tag: "passThrough" }
      let bytesLeft = Infinity
      let resets = 0
      const pairs = new Set<Pair>()
      let onStall: Array<() => void> = []
      let hasStalled = false
      let occurrences = 0

      const resetAll = () => {
        for (const pair of pairs) {
          pair.client.resetAndDestroy()
          pair.server.destroy()
          resets++
        }
        pairs.clear()
      }

      const sends = (pair: Pair, chunk: Buffer, pattern: string) => {
        const seen = pair.tail + chunk.toString("latin1")
        pair.tail = seen.slice(-pattern.length)
        return seen.includes(pattern)
      }

      const forward = (pair: Pair, from: net.Socket, to: net.Socket, direction: "toServer" | "fromServer") => {
        // Latency is the fault itself: chunks wait their turn in a chain, so they still arrive in order.
        let delivered = Promise.resolve()
        const write = (chunk: Buffer) => {
          const ms = fault._tag === "latency" ? fault.ms : 0
          delivered = delivered
            .then(() => (ms > 0 ? delay(ms) : undefined))
            .then(() => void (!to.destroyed && to.write(chunk)))
        }
        from.on("data", (chunk: Buffer) => {
          if (fault._tag === "stall" || pair.stalled) return
          if (
            fault._tag === "stallOn" &&
            direction === "toServer" &&
            sends(pair, chunk, fault.pattern) &&
            ++occurrences >= (fault.occurrence ?? 1)
          ) {
            pair.stalled = true
            fault = { _tag: "passThrough" }
            hasStalled = true
            onStall.forEach((notify) => notify())
            onStall = []
            return
          }
          if (
            fault._tag === "resetOn" &&
            direction === "toServer" &&
            sends(pair, chunk, fault.pattern) &&
            ++occurrences >= (fault.occurrence ?? 1)
          ) {
            fault = fault.thenRecover ? { _tag: "passThrough" } : { _tag: "refuse" }
            resetAll()
            return
          }
          if (fault._tag === "resetAfterBytes" && (fault.direction ?? "toServer") === direction) {
            bytesLeft -= chunk.length
            if (bytesLeft <= 0) {
              fault = fault.thenRecover ? { _tag: "passThrough" } : { _tag: "refuse" }
              bytesLeft = Infinity
              resetAll()
              return
            }
          }
          write(chunk)
        })
      }

      const server = net.createServer((client) => {
        if (fault._tag === "refuse") {
          client.resetAndDestroy()
          return
        }
        const upstream = net.connect(target.port, target.host)
        const pair: Pair = { client, server: upstream, stalled: false, tail: "" }
        pairs.add(pair)
        const close = () => {
          pairs.delete(pair)
          client.destroy()
          upstream.destroy()
        }
        client.on("error", close).on("close", close)
        upstream.on("error", close).on("close", close)
        forward(pair, client, upstream, "toServer")
        forward(pair, upstream, client, "fromServer")
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as net.AddressInfo
        resume(
          Effect.succeed({
            proxy: {
              host: "127.0.0.1",
              port,
              setFault: (next) => {
                fault = next
                occurrences = 0
                hasStalled = false
                bytesLeft = next._tag === "resetAfterBytes" ? next.bytes : Infinity
              },
              resets: () => resets,
              stalled: Effect.async<void>((resume) => {
                if (hasStalled) return resume(Effect.void)
                onStall.push(() => resume(Effect.void))
              }),
              releaseStalled: Effect.sync(() => {
                for (const pair of pairs) {
                  if (!pair.stalled) continue
                  pair.client.resetAndDestroy()
                  pair.server.destroy()
                  pairs.delete(pair)
                  resets++
                }
              })
            },
            close: () =>
              new Promise<void>((done) => {
                resetAll()
                server.close(() => done())
              })
          })
        )
      })
    }),
    ({ close }) => Effect.promise(close)
  ).pipe(Effect.map(({ proxy }) => proxy))
