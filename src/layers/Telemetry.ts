import * as Otlp from "@effect/opentelemetry/Otlp"
import { FetchHttpClient } from "@effect/platform"
import { Effect, Layer, Option } from "effect"
import { toolVersion } from "../domain/version.ts"
import { EtlSettings } from "../connections/EtlSettings.ts"

/**
 * Effect's spans and metrics as OTLP/HTTP JSON to OTEL_EXPORTER_OTLP_ENDPOINT, when it is set; nothing otherwise.
 * The layer's end flushes what is still buffered, so a short command's spans are not lost at exit.
 */
export const Telemetry = Layer.unwrapEffect(
  Effect.map(EtlSettings, (settings) =>
    Option.match(settings.monitoring.otlpEndpoint, {
      onNone: () => Layer.empty,
      onSome: (baseUrl) =>
        Otlp.layerJson({
          baseUrl,
          resource: {
            serviceName: "opendental-etl",
            serviceVersion: toolVersion,
            attributes: { "deployment.environment": settings.environment }
          }
        }).pipe(Layer.provide(FetchHttpClient.layer))
    })
  )
)
