import { Context, Duration, Effect, Either, Layer, Schedule, type Scope } from "effect"
import * as Mysql from "mysql2/promise"
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import Pg from "pg"
import type { TestServers } from "./TestDatabases.ts"

/** Throwaway MariaDB and PostgreSQL that accept TLS only, with a CA and server certificates made for this run. */
export interface TlsServerSet {
  /** PEM file paths: `ca` signed both servers' certificates; `otherCa` signed nothing they present. */
  readonly certificates: { readonly ca: string; readonly otherCa: string }
  /** host "localhost"; the servers' certificate names what `startTlsServersFor` was given (DNS:localhost by default). */
  readonly mysql: TlsServer
  readonly postgres: TlsServer
}

export interface TlsServer {
  readonly host: string
  readonly port: number
  /** An administrator: MariaDB's has ALL PRIVILEGES ON *.* WITH GRANT OPTION, PostgreSQL's is the superuser. */
  readonly user: string
  readonly password: string
  /** The server's own log, for a test that wants to show why the server refused something. */
  readonly log: string
}

/** The servers as test servers: their administrators sign in with the CA that signed them. */
export const testServersOf = (set: TlsServerSet): TestServers => ({
  mysql: { ...set.mysql, ca: set.certificates.ca },
  postgres: { ...set.postgres, ca: set.certificates.ca }
})

export class TlsServers extends Context.Tag("test/TlsServers")<TlsServers, TlsServerSet>() {}

const readyWithin = Duration.seconds(60)
const commandTimeout = Duration.seconds(60)
const stopWithin = Duration.seconds(30)

const toError = (cause: unknown) => (cause instanceof Error ? cause : new Error(String(cause)))
const attempt = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: toError })

const tail = (text: string, lines = 30) => text.trimEnd().split("\n").slice(-lines).join("\n")

const logTail = (file: string) =>
  Effect.promise(() => fs.readFile(file, "utf8").then(tail, (e: Error) => `(no log: ${e.message})`))

// PostgreSQL refuses to run as root, so as root its commands run as the `postgres` account.
const isRoot = process.getuid?.() === 0
const postgresAccount = "postgres"

/**
 * Runs a command to completion; fails with its output when it exits non-zero or outlasts `commandTimeout`. An
 * interruption (the timeout's too) kills it.
 */
const run = (command: string, args: ReadonlyArray<string>, cwd: string) =>
  Effect.async<string, Error>((resume) => {
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    let settled = false
    const settle = (result: Effect.Effect<string, Error>) => {
      if (settled) return
      settled = true
      resume(result)
    }
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.on("error", (e) => settle(Effect.fail(new Error(`${command} could not run: ${e.message}`))))
    child.on("close", (code, signal) =>
      settle(
        code === 0
          ? Effect.succeed(output)
          : Effect.fail(
              new Error(`${[command, ...args].join(" ")} failed (${signal ?? `exit code ${code}`}):\n${tail(output)}`)
            )
      )
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  }).pipe(
    Effect.timeoutFail({
      duration: commandTimeout,
      onTimeout: () =>
        new Error(`${[command, ...args].join(" ")} did not finish within ${Duration.format(commandTimeout)}`)
    })
  )

const asPostgres = (command: string, args: ReadonlyArray<string>, cwd: string) =>
  isRoot ? run("runuser", ["-u", postgresAccount, "--", command, ...args], cwd) : run(command, args, cwd)

const pathDirectories = () => (process.env.PATH ?? "").split(path.delimiter).filter((dir) => dir !== "")

const isExecutable = (file: string) =>
  fs.access(file, fs.constants.X_OK).then(
    () => true,
    () => false
  )
const isFile = (file: string) =>
  fs.access(file).then(
    () => true,
    () => false
  )

const findIn = async (directories: ReadonlyArray<string>, name: string) => {
  for (const dir of directories) {
    const file = path.join(dir, name)
    if (await isExecutable(file)) return file
  }
  return undefined
}

// mariadbd lives in sbin, which a non-root PATH often lacks.
const mariadbBinaries = attempt(async () => {
  const directories = [...pathDirectories(), "/usr/sbin", "/usr/bin"]
  const installDb = await findIn(directories, "mariadb-install-db")
  const server = await findIn(directories, "mariadbd")
  if (installDb === undefined || server === undefined) {
    const missing = [installDb === undefined && "mariadb-install-db", server === undefined && "mariadbd"].filter(
      Boolean
    )
    throw new Error(
      `MariaDB's ${missing.join(" and ")} not found on PATH or in /usr/sbin: install Debian's package mariadb-server`
    )
  }
  return { installDb, server }
})

// Debian keeps PostgreSQL's server binaries off PATH, one directory per major version.
const postgresBinaries = attempt(async () => {
  const versionsRoot = "/usr/lib/postgresql"
  const versions = await fs.readdir(versionsRoot).catch(() => [] as Array<string>)
  const candidates = [
    ...versions
      .filter((version) => /^\d+$/.test(version))
      .sort((a, b) => Number(b) - Number(a))
      .map((version) => path.join(versionsRoot, version, "bin")),
    ...pathDirectories()
  ]
  for (const dir of candidates) {
    const found = await Promise.all(["initdb", "pg_ctl", "postgres"].map((name) => isExecutable(path.join(dir, name))))
    if (found.every(Boolean)) return { initdb: path.join(dir, "initdb"), pgCtl: path.join(dir, "pg_ctl") }
  }
  throw new Error(
    `PostgreSQL's initdb, pg_ctl and postgres not found together in ${versionsRoot}/<version>/bin or on PATH: install Debian's package postgresql`
  )
})

/** Ports nothing listens on now: bound by the OS on 127.0.0.1 together (so they differ), then released. */
const freePorts = (count: number) =>
  attempt(async () => {
    const servers = await Promise.all(
      Array.from(
        { length: count },
        () =>
          new Promise<net.Server>((resolve, reject) => {
            const server = net.createServer()
            server.once("error", reject)
            server.listen(0, "127.0.0.1", () => resolve(server))
          })
      )
    )
    const ports = servers.map((server) => (server.address() as net.AddressInfo).port)
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
    return ports
  })

const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

/** A CA, a server certificate it signs for `names` only, and an unrelated CA. EC keys keep this fast. */
const makeCertificates = (dir: string, names: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const file = (name: string) => path.join(dir, name)
    const selfSignedCa = (name: string, commonName: string) =>
      run(
        "openssl",
        [
          "req",
          "-x509",
          ...newKey,
          "-keyout",
          file(`${name}.key`),
          "-out",
          file(`${name}.pem`),
          "-days",
          "2",
          "-subj",
          `/CN=${commonName}`
        ],
        dir
      )
    yield* Effect.all(
      [selfSignedCa("ca", "opendental-etl test CA"), selfSignedCa("other-ca", "opendental-etl unrelated CA")],
      {
        concurrency: 2
      }
    )
    yield* run(
      "openssl",
      ["req", "-new", ...newKey, "-keyout", file("server.key"), "-out", file("server.csr"), "-subj", "/CN=localhost"],
      dir
    )
    yield* attempt(() =>
      fs.writeFile(
        file("server.ext"),
        `subjectAltName = ${names.join(", ")}\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature\nextendedKeyUsage = serverAuth\n`
      )
    )
    yield* run(
      "openssl",
      [
        "x509",
        "-req",
        "-in",
        file("server.csr"),
        "-CA",
        file("ca.pem"),
        "-CAkey",
        file("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        file("server.ext"),
        "-out",
        file("server.pem")
      ],
      dir
    )
    yield* attempt(() =>
      Promise.all(["ca.key", "other-ca.key", "server.key"].map((name) => fs.chmod(file(name), 0o600)))
    )
    return { ca: file("ca.pem"), otherCa: file("other-ca.pem"), cert: file("server.pem"), key: file("server.key") }
  })

type ServerCertificates = Effect.Effect.Success<ReturnType<typeof makeCertificates>>

/**
 * Polls `probe` until it succeeds, the server is gone, or `readyWithin` passes; the failure carries the last
 * connection error and the end of the server's log.
 */
const waitUntilReady = (name: string, probe: Effect.Effect<void, Error>, running: () => boolean, log: string) => {
  let last: Error | undefined
  return probe.pipe(
    Effect.tapError((e) => Effect.sync(() => (last = e))),
    Effect.retry({ schedule: Schedule.spaced(Duration.millis(200)), while: running }),
    Effect.timeoutFail({
      duration: readyWithin,
      onTimeout: () => new Error(`no TLS connection within ${Duration.format(readyWithin)}`)
    }),
    Effect.catchAll((e) =>
      Effect.flatMap(logTail(log), (logEnd) => {
        const why = running() ? e.message : `the server stopped (last connection error: ${last?.message ?? e.message})`
        return Effect.fail(new Error(`${name} did not start: ${why}; the end of its log ${log}:\n${logEnd}`))
      })
    )
  )
}

const hasExited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null

const exited = (child: ChildProcess) =>
  Effect.async<void>((resume) => {
    if (hasExited(child)) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
  })

/** Starts a long-running server process; it is sent SIGTERM with the scope, and SIGKILL if it outlasts `stopWithin`. */
const spawnServer = (command: string, args: ReadonlyArray<string>, cwd: string) =>
  Effect.acquireRelease(
    Effect.async<ChildProcess, Error>((resume) => {
      const child = spawn(command, args, { cwd, stdio: "ignore" })
      child.once("spawn", () => resume(Effect.succeed(child)))
      child.once("error", (e) => resume(Effect.fail(new Error(`${command} could not run: ${e.message}`))))
    }),
    (child) =>
      hasExited(child)
        ? Effect.void
        : Effect.sync(() => child.kill("SIGTERM")).pipe(
            Effect.zipRight(exited(child)),
            Effect.timeout(stopWithin),
            Effect.catchAll(() => Effect.sync(() => child.kill("SIGKILL")).pipe(Effect.zipRight(exited(child))))
          )
  )

const startMariadb = (dir: string, port: number, certificates: ServerCertificates) =>
  Effect.gen(function* () {
    const binaries = yield* mariadbBinaries
    const datadir = path.join(dir, "data")
    const log = path.join(dir, "error.log")
    const initFile = path.join(dir, "init.sql")
    const user = "etl_tls_admin"
    const password = randomBytes(18).toString("hex")
    // mariadbd refuses to run as root unless told to.
    const runAs = isRoot ? ["--user=root"] : []
    // Small and quick: the install sizes the redo log, and durability does not matter for a throwaway server.
    const innodb = ["--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M", "--innodb-flush-log-at-trx-commit=2"]
    yield* attempt(() => fs.mkdir(dir))
    yield* run(
      binaries.installDb,
      [
        "--no-defaults",
        `--datadir=${datadir}`,
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        "--skip-name-resolve",
        ...innodb,
        ...runAs
      ],
      dir
    )
    yield* attempt(() =>
      fs.writeFile(
        initFile,
        `CREATE USER IF NOT EXISTS '${user}'@'%' IDENTIFIED BY '${password}';\n` +
          `GRANT ALL PRIVILEGES ON *.* TO '${user}'@'%' WITH GRANT OPTION;\n`
      )
    )
    const server = yield* spawnServer(
      binaries.server,
      [
        "--no-defaults",
        `--datadir=${datadir}`,
        `--socket=${path.join(dir, "mysqld.sock")}`,
        `--pid-file=${path.join(dir, "mysqld.pid")}`,
        `--log-error=${log}`,
        `--port=${port}`,
        "--bind-address=127.0.0.1",
        "--skip-name-resolve",
        `--ssl-ca=${certificates.ca}`,
        `--ssl-cert=${certificates.cert}`,
        `--ssl-key=${certificates.key}`,
        "--require-secure-transport=ON",
        // The tool loads the replica with LOAD DATA LOCAL INFILE.
        "--local-infile=1",
        `--init-file=${initFile}`,
        // What Debian's own server is configured with (the shared test server), not the compiled-in latin1.
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_general_ci",
        ...innodb,
        "--performance-schema=OFF",
        ...runAs
      ],
      dir
    )
    const endpoint = { host: "localhost", port, user, password, log }
    yield* waitUntilReady(
      "MariaDB",
      attempt(async () => {
        const connection = await Mysql.createConnection({
          host: endpoint.host,
          port,
          user,
          password,
          connectTimeout: 2_000,
          ssl: { ca: await fs.readFile(certificates.ca, "utf8"), rejectUnauthorized: true }
        })
        await connection.end()
      }),
      () => !hasExited(server),
      log
    )
    return endpoint
  })

/** Stops PostgreSQL fast (open sessions are cancelled), immediately if that does not work; nothing if it never ran. */
const stopPostgres = (pgCtl: string, datadir: string, cwd: string) =>
  Effect.promise(() => isFile(path.join(datadir, "postmaster.pid"))).pipe(
    Effect.flatMap((running) =>
      running
        ? asPostgres(
            pgCtl,
            ["-D", datadir, "-m", "fast", "-w", "-t", String(Duration.toSeconds(stopWithin)), "stop"],
            cwd
          ).pipe(
            Effect.orElse(() => asPostgres(pgCtl, ["-D", datadir, "-m", "immediate", "-w", "stop"], cwd)),
            Effect.catchAll((e) => Effect.logWarning(`PostgreSQL in ${datadir} did not stop: ${e.message}`))
          )
        : Effect.void
    )
  )

const postgresIds = Effect.all({
  uid: run("id", ["-u", postgresAccount], os.tmpdir()),
  gid: run("id", ["-g", postgresAccount], os.tmpdir())
}).pipe(
  Effect.map(({ uid, gid }) => ({ uid: Number(uid.trim()), gid: Number(gid.trim()) })),
  Effect.mapError(
    (e) => new Error(`running as root, PostgreSQL needs the system account ${postgresAccount}: ${e.message}`)
  )
)

const startPostgres = (dir: string, port: number, certificates: ServerCertificates) =>
  Effect.gen(function* () {
    const binaries = yield* postgresBinaries
    const datadir = path.join(dir, "data")
    const log = path.join(dir, "server.log")
    const pwfile = path.join(dir, "pwfile")
    const user = "postgres"
    const password = randomBytes(18).toString("hex")
    yield* attempt(() => fs.mkdir(dir))
    yield* attempt(() => fs.writeFile(pwfile, `${password}\n`, { mode: 0o600 }))
    if (isRoot) {
      // The server's account owns its directory, and its key (PostgreSQL insists); root's mariadbd still reads it.
      const { uid, gid } = yield* postgresIds
      yield* attempt(() => Promise.all([dir, pwfile, certificates.key].map((file) => fs.chown(file, uid, gid))))
    }
    yield* asPostgres(
      binaries.initdb,
      [
        "-D",
        datadir,
        "-U",
        user,
        `--pwfile=${pwfile}`,
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync"
      ],
      dir
    )
    // TLS over TCP or nothing: no `host` line, so a plain-text connection finds no entry and is refused.
    yield* attempt(() =>
      fs.writeFile(
        path.join(datadir, "pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
      )
    )
    yield* attempt(() =>
      fs.appendFile(
        path.join(datadir, "postgresql.conf"),
        [
          `port = ${port}`,
          "listen_addresses = '127.0.0.1'",
          `unix_socket_directories = '${dir}'`,
          "ssl = on",
          `ssl_cert_file = '${certificates.cert}'`,
          `ssl_key_file = '${certificates.key}'`,
          `ssl_ca_file = '${certificates.ca}'`,
          "shared_buffers = 16MB",
          "max_connections = 50",
          "fsync = off",
          ""
        ].join("\n")
      )
    )
    // pg_ctl -w returns once the server accepts connections, or fails (bounded by -t) with its log written. A server
    // that outlasted -t still runs, so the stop is registered whether the start succeeded or not.
    const started = yield* Effect.acquireRelease(
      Effect.either(
        asPostgres(
          binaries.pgCtl,
          ["-D", datadir, "-l", log, "-w", "-t", String(Duration.toSeconds(readyWithin)), "-s", "start"],
          dir
        )
      ),
      () => stopPostgres(binaries.pgCtl, datadir, dir)
    )
    if (Either.isLeft(started)) {
      const logEnd = yield* logTail(log)
      return yield* Effect.fail(
        new Error(`PostgreSQL did not start: ${started.left.message}; the end of its log ${log}:\n${logEnd}`)
      )
    }
    const endpoint = { host: "localhost", port, user, password, log }
    yield* waitUntilReady(
      "PostgreSQL",
      attempt(async () => {
        const client = new Pg.Client({
          host: endpoint.host,
          port,
          user,
          password,
          database: "postgres",
          connectionTimeoutMillis: 2_000,
          ssl: {
            ca: await fs.readFile(certificates.ca, "utf8"),
            rejectUnauthorized: true,
            checkServerIdentity: () => undefined
          }
        })
        await client.connect()
        await client.end()
      }),
      () => true,
      log
    )
    return endpoint
  })

/** One temporary directory for certificates, data, sockets and logs, removed with the scope. */
const temporaryDirectory = Effect.acquireRelease(
  attempt(async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "etl-tls-"))
    // As root, PostgreSQL runs as its own account, which must reach its directory and the certificates inside.
    if (isRoot) await fs.chmod(dir, 0o711)
    return dir
  }),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)

/**
 * Starts both (concurrently) with a server certificate for `names` (subjectAltName entries such as `DNS:localhost`,
 * `IP:127.0.0.1`), waits until each accepts a TLS connection, stops both with the scope.
 */
export const startTlsServersFor = (names: ReadonlyArray<string>): Effect.Effect<TlsServerSet, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = yield* temporaryDirectory
    const certificatesDir = path.join(dir, "certificates")
    yield* attempt(() => fs.mkdir(certificatesDir))
    const certificates = yield* makeCertificates(certificatesDir, names)
    const [mysqlPort, postgresPort] = (yield* freePorts(2)) as [number, number]
    const { mysql, postgres } = yield* Effect.all(
      {
        mysql: startMariadb(path.join(dir, "mariadb"), mysqlPort, certificates),
        postgres: startPostgres(path.join(dir, "postgres"), postgresPort, certificates)
      },
      { concurrency: 2 }
    )
    return { certificates: { ca: certificates.ca, otherCa: certificates.otherCa }, mysql, postgres }
  })

/** A certificate for DNS:localhost only: connecting to 127.0.0.1 is then a host name it does not carry. */
export const startTlsServers = startTlsServersFor(["DNS:localhost"])

export const layer = Layer.scoped(TlsServers, startTlsServers)
