import { Effect } from "effect"
import * as net from "node:net"

/** A TCP proxy to `target` that keeps every byte it forwards, both ways: what travelled on the wire. */
export const makeRecordingProxy = (target: { readonly host: string; readonly port: number }) =>
  Effect.acquireRelease(
    Effect.async<{ readonly port: number; readonly recorded: () => Buffer; readonly server: net.Server }>((resume) => {
      const chunks: Array<Buffer> = []
      const sockets = new Set<net.Socket>()
      const server = net.createServer((client) => {
        const upstream = net.connect(target.port, target.host)
        for (const socket of [client, upstream]) {
          sockets.add(socket)
          socket.on("error", () => socket.destroy())
          socket.on("close", () => sockets.delete(socket))
        }
        client.on("data", (d: Buffer) => (chunks.push(Buffer.from(d)), upstream.write(d)))
        upstream.on("data", (d: Buffer) => (chunks.push(Buffer.from(d)), client.write(d)))
        client.on("close", () => upstream.destroy())
        upstream.on("close", () => client.destroy())
      })
      server.on("close", () => sockets.forEach((s) => s.destroy()))
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({ port, recorded: () => Buffer.concat(chunks), server }))
      })
    }),
    ({ server }) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
  )
