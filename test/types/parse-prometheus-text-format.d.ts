declare module "parse-prometheus-text-format" {
  interface Sample {
    readonly value: string
    readonly labels?: Readonly<Record<string, string>>
  }
  interface MetricFamily {
    readonly name: string
    readonly help: string
    readonly type: string
    readonly metrics: ReadonlyArray<Sample>
  }
  /** Throws on text that is not Prometheus' exposition format. */
  export default function parsePrometheusTextFormat(text: string): Array<MetricFamily>
}
