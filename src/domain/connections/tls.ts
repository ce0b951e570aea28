import { Option } from "effect"
import { X509Certificate } from "node:crypto"
import { isIP } from "node:net"
import type { DatabaseRole } from "../environment.ts"

/**
 * TLS to a database, in PostgreSQL's words: none; encrypted; encrypted to a server whose certificate a trusted CA
 * signed; and that certificate also names the host connected to. No "prefer": a connection is encrypted or not
 * because the settings say so.
 */
export const tlsModes = ["disable", "require", "verify-ca", "verify-full"] as const
export type TlsMode = (typeof tlsModes)[number]

export interface TlsSettings {
  readonly mode: TlsMode
  /** PEM of the CAs the server's certificate is checked against; the system's CAs when none. */
  readonly ca: Option.Option<string>
}

export const plainText: TlsSettings = { mode: "disable", ca: Option.none() }

/** The variables that set a connection's host and TLS: the writer shares the source's server and its settings. */
export const tlsVariables = (
  role: DatabaseRole
): { readonly host: string; readonly mode: string; readonly ca: string } => {
  switch (role) {
    case "source":
    case "source-writer":
      return { host: "OPENDENTAL_SOURCE_HOST", mode: "OPENDENTAL_SOURCE_SSL_MODE", ca: "OPENDENTAL_SOURCE_SSL_CA" }
    case "replication":
      return { host: "MYSQL_REPLICATION_HOST", mode: "MYSQL_REPLICATION_SSL_MODE", ca: "MYSQL_REPLICATION_SSL_CA" }
    case "analytics":
      return {
        host: "POSTGRES_ANALYTICS_HOST",
        mode: "POSTGRES_ANALYTICS_SSLMODE",
        ca: "POSTGRES_ANALYTICS_SSLROOTCERT"
      }
  }
}

/**
 * Traffic to these hosts never leaves the machine, so plain text exposes nothing. Names under `.localhost` are not
 * among them: the system's resolver may send them to DNS.
 */
export const isLoopback = (host: string): boolean => {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, "$1")
  return name === "localhost" || name === "::1" || /^127\.\d+\.\d+\.\d+$/.test(name)
}

/**
 * mysql2 checks the certificate's names only for a host given by name: for an IP address it checks "localhost"
 * instead, during a handshake the tool cannot reach into before the login is sent. verify-full to a MySQL server
 * by address would look verified and not be, so it is refused; verify-ca checks the CA alone and says so.
 */
export const unverifiableMysqlHost = (connection: {
  readonly role: DatabaseRole
  readonly host: string
  readonly tls: TlsSettings
}): { readonly variable: string; readonly problem: string } | undefined => {
  if (connection.role === "analytics" || connection.tls.mode !== "verify-full" || isIP(connection.host) === 0)
    return undefined
  const variables = tlsVariables(connection.role)
  return {
    variable: variables.mode,
    problem:
      `is verify-full, but ${variables.host} is the IP address ${connection.host}, which the MySQL driver ` +
      `cannot check against the certificate's names: set ${variables.host} to a name the certificate lists, or ` +
      `${variables.mode}=verify-ca to check the CA only`
  }
}

/**
 * The connections that would carry patient data and their passwords in clear beyond this machine: production refuses
 * them unless ETL_ALLOW_PLAINTEXT says plain text is meant. One problem per connection, by its mode's variable.
 */
export const plaintextExposures = (
  connections: ReadonlyArray<{ readonly role: DatabaseRole; readonly host: string; readonly tls: TlsSettings }>
): ReadonlyArray<{ readonly variable: string; readonly problem: string }> =>
  connections
    .filter((c) => c.tls.mode === "disable" && !isLoopback(c.host))
    .map((c) => ({
      variable: tlsVariables(c.role).mode,
      problem:
        `is disable, so the ${c.role} connection to ${c.host} would carry patient data and its password ` +
        `unencrypted: set it to verify-full (or require), or set ETL_ALLOW_PLAINTEXT=true to accept plain text`
    }))

const certificateBegins = "-----BEGIN CERTIFICATE-----"
const certificateBlock = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g

/**
 * What is wrong with a CA file's PEM, said after "names <path>, which"; undefined when each certificate in it can be
 * read. Node skips a certificate it cannot parse without a word, and the connection then fails as if the server's
 * certificate were at fault.
 */
export const caFileProblem = (pem: string): string | undefined => {
  const begun = pem.split(certificateBegins).length - 1
  const blocks = pem.match(certificateBlock) ?? []
  if (begun === 0) return `holds no PEM certificate (${certificateBegins})`
  if (blocks.length < begun)
    return `holds a certificate cut short: ${begun} begin, ${blocks.length} end with -----END CERTIFICATE-----`
  for (const [index, block] of blocks.entries()) {
    try {
      new X509Certificate(block)
    } catch (cause) {
      const reason = (cause instanceof Error ? cause.message : String(cause)).replace(/^error:[0-9A-F]+:[^:]*::/, "")
      return `holds a certificate that cannot be read (number ${index + 1} of ${blocks.length}: ${reason})`
    }
  }
  return undefined
}

/** What the server reports of the session's encryption; none when the session is plain text. */
export interface TlsSession {
  readonly version: string
  readonly cipher: string
}

/** A connection's encryption as reports carry it: the mode set, and what the server reported (null: plain text). */
export interface TlsFact {
  readonly mode: TlsMode
  readonly version: string | null
  readonly cipher: string | null
}

export const tlsFact = (mode: TlsMode, session: Option.Option<TlsSession>): TlsFact =>
  Option.match(session, {
    onNone: () => ({ mode, version: null, cipher: null }),
    onSome: ({ version, cipher }) => ({ mode, version, cipher })
  })

/** null: the connection was never opened (a writer not configured). */
export const describeTls = (fact: TlsFact | null): string =>
  fact === null
    ? "not connected"
    : fact.version === null
      ? "not encrypted"
      : `${fact.version} ${fact.cipher ?? ""} (${fact.mode})`

/** Node's codes for a certificate chain that no trusted CA signed; mysql2 passes on only their text. */
const untrustedChain = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED"
])
const untrustedText = new RegExp(
  [
    "self[- ]signed certificate",
    "unable to get (local )?issuer certificate",
    "unable to verify the first certificate",
    "certificate signature failure"
  ].join("|"),
  "i"
)

interface Failure {
  readonly code: string | undefined
  readonly message: string
}

/**
 * What a failed connection's TLS settings may have to do with it, naming the variable to change; undefined when
 * nothing points at TLS. A plain-text login to a MariaDB account that requires TLS is answered "access denied", so
 * that answer names TLS as a possible cause only.
 */
export const tlsHint = (role: DatabaseRole, tls: TlsSettings, host: string, failure: Failure): string | undefined => {
  const variables = tlsVariables(role)
  const trusted = Option.isSome(tls.ca)
    ? `the CA in ${variables.ca}`
    : `a CA the system trusts (${variables.ca} is not set)`
  const code = failure.code ?? ""
  const said = failure.message
  if (untrustedChain.has(code) || untrustedText.test(said))
    return `certificate problem: the server's certificate is not signed by ${trusted}`
  if (code === "CERT_HAS_EXPIRED" || /certificate has expired/i.test(said))
    return "certificate problem: the server's certificate has expired"
  if (code === "CERT_NOT_YET_VALID" || /certificate is not yet valid/i.test(said))
    return "certificate problem: the server's certificate is not valid yet"
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID" || /does not match certificate's altnames/i.test(said)) {
    return (
      `certificate problem: the server's certificate is not for host '${host}' (connect by a name the ` +
      `certificate lists, or set ${variables.mode}=verify-ca to check the CA only)`
    )
  }
  if (tls.mode === "disable") {
    if (code === "ER_SECURE_TRANSPORT_REQUIRED" || /insecure transport|require_secure_transport/i.test(said)) {
      return `the server accepts TLS connections only: set ${variables.mode} to verify-full (and ${variables.ca})`
    }
    if (/no encryption/i.test(said)) {
      return `the server accepts this account over TLS only: set ${variables.mode} to verify-full (and ${variables.ca})`
    }
    if (code === "ER_ACCESS_DENIED_ERROR") {
      return `a wrong user or password, or a server or account that accepts TLS only while ${variables.mode} is disable`
    }
    return undefined
  }
  if (code === "HANDSHAKE_NO_SSL_SUPPORT" || /does not support SSL|does not support secure connection/i.test(said)) {
    return `the server does not offer TLS and ${variables.mode} is ${tls.mode}`
  }
  return undefined
}
