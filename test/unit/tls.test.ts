import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import {
  describeTls,
  isLoopback,
  tlsFact,
  tlsHint,
  type TlsSettings,
  unverifiableMysqlHost
} from "../../src/domain/connections/tls.ts"

const verifyFull: TlsSettings = { mode: "verify-full", ca: Option.some("-----BEGIN CERTIFICATE-----") }
const disabled: TlsSettings = { mode: "disable", ca: Option.none() }

describe("TLS", () => {
  it.each([
    ["localhost", true],
    ["LOCALHOST", true],
    ["db.localhost", false],
    ["127.0.0.1", true],
    ["127.1.2.3", true],
    ["::1", true],
    ["[::1]", true],
    ["10.0.0.5", false],
    ["opendental-db.clinic.example", false],
    ["localhost.clinic.example", false],
    ["127.0.0.1.example", false]
  ])("%s is the loopback: %s", (host, loopback) => {
    expect(isLoopback(host)).toBe(loopback)
  })

  it.each([
    {
      case: "pg, a CA that did not sign the chain",
      role: "analytics" as const,
      tls: verifyFull,
      failure: { code: "SELF_SIGNED_CERT_IN_CHAIN", message: "self-signed certificate in certificate chain" },
      hint: "certificate problem: the server's certificate is not signed by the CA in POSTGRES_ANALYTICS_SSLROOTCERT"
    },
    {
      case: "mysql2 passes the text on under its own code",
      role: "replication" as const,
      tls: { mode: "verify-ca" as const, ca: Option.none() },
      failure: { code: "HANDSHAKE_SSL_ERROR", message: "unable to get local issuer certificate" },
      hint: "certificate problem: the server's certificate is not signed by a CA the system trusts (MYSQL_REPLICATION_SSL_CA is not set)"
    },
    {
      case: "a host name the certificate does not carry",
      role: "source-writer" as const,
      tls: verifyFull,
      host: "vm",
      failure: {
        code: "HANDSHAKE_SSL_ERROR",
        message:
          "Hostname/IP does not match certificate's altnames: Host: vm. is not in the cert's altnames: DNS:localhost"
      },
      hint: "certificate problem: the server's certificate is not for host 'vm' (connect by a name the certificate lists, or set OPENDENTAL_SOURCE_SSL_MODE=verify-ca to check the CA only)"
    },
    {
      case: "an expired certificate",
      role: "source" as const,
      tls: verifyFull,
      failure: { code: "CERT_HAS_EXPIRED", message: "certificate has expired" },
      hint: "certificate problem: the server's certificate has expired"
    },
    {
      case: "MariaDB refusing plain text looks like a wrong password",
      role: "source" as const,
      tls: disabled,
      failure: {
        code: "ER_ACCESS_DENIED_ERROR",
        message: "Access denied for user 'etl_reader'@'10.0.0.9' (using password: YES)"
      },
      hint: "a wrong user or password, or a server or account that accepts TLS only while OPENDENTAL_SOURCE_SSL_MODE is disable"
    },
    {
      case: "PostgreSQL's hostssl-only pg_hba.conf",
      role: "analytics" as const,
      tls: disabled,
      failure: {
        code: "28000",
        message: 'no pg_hba.conf entry for host "10.0.0.9", user "etl_loader", database "analytics", no encryption'
      },
      hint: "the server accepts this account over TLS only: set POSTGRES_ANALYTICS_SSLMODE to verify-full (and POSTGRES_ANALYTICS_SSLROOTCERT)"
    },
    {
      case: "a server without TLS",
      role: "replication" as const,
      tls: verifyFull,
      failure: { code: "HANDSHAKE_NO_SSL_SUPPORT", message: "Server does not support secure connection" },
      hint: "the server does not offer TLS and MYSQL_REPLICATION_SSL_MODE is verify-full"
    },
    {
      case: "access denied over TLS is only a credential problem",
      role: "source" as const,
      tls: verifyFull,
      failure: {
        code: "ER_ACCESS_DENIED_ERROR",
        message: "Access denied for user 'etl_reader'@'10.0.0.9' (using password: YES)"
      },
      hint: undefined
    },
    {
      case: "a refused port has nothing to do with TLS",
      role: "analytics" as const,
      tls: disabled,
      failure: { code: "ECONNREFUSED", message: "connect ECONNREFUSED 10.0.0.5:5432" },
      hint: undefined
    }
  ])("$case", ({ role, tls, failure, hint, host = "db.clinic.example" }) => {
    expect(tlsHint(role, tls, host, failure)).toBe(hint)
  })

  it("refuses verify-full to a MySQL server given by address, which the driver cannot check by name; PostgreSQL can", () => {
    expect(unverifiableMysqlHost({ role: "replication", host: "10.0.0.5", tls: verifyFull })).toEqual({
      variable: "MYSQL_REPLICATION_SSL_MODE",
      problem:
        "is verify-full, but MYSQL_REPLICATION_HOST is the IP address 10.0.0.5, which the MySQL driver cannot check against the certificate's names: set MYSQL_REPLICATION_HOST to a name the certificate lists, or MYSQL_REPLICATION_SSL_MODE=verify-ca to check the CA only"
    })
    expect(unverifiableMysqlHost({ role: "source-writer", host: "::1", tls: verifyFull })?.variable).toBe(
      "OPENDENTAL_SOURCE_SSL_MODE"
    )
    expect(unverifiableMysqlHost({ role: "source", host: "db.clinic.example", tls: verifyFull })).toBeUndefined()
    expect(
      unverifiableMysqlHost({ role: "source", host: "10.0.0.5", tls: { mode: "verify-ca", ca: Option.none() } })
    ).toBeUndefined()
    expect(unverifiableMysqlHost({ role: "analytics", host: "10.0.0.5", tls: verifyFull })).toBeUndefined()
  })

  it("says what the server reported, or that the connection is not encrypted", () => {
    expect(
      describeTls(tlsFact("verify-full", Option.some({ version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384" })))
    ).toBe("TLSv1.3 TLS_AES_256_GCM_SHA384 (verify-full)")
    expect(describeTls(tlsFact("disable", Option.none()))).toBe("not encrypted")
    expect(describeTls(null)).toBe("not connected")
  })
})
