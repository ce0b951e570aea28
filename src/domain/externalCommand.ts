/**
 * An external pipeline's command line and what its output says when it fails. Pure: the Pipeline service runs the
 * commands and feeds the lines in.
 */

/**
 * `{table}` runs the command once per table (each run has its own outcome, time and budget); `{tables}` or no
 * placeholder runs it once for all tables, and without a placeholder the tables are appended as arguments.
 */
export type CommandMode = "per-table" | "all-tables"

/** One command to run and the tables whose outcome it decides. */
export interface PlannedCommand {
  readonly tables: ReadonlyArray<string>
  readonly argv: ReadonlyArray<string>
}

const tablePlaceholder = "{table}"
const tablesPlaceholder = "{tables}"

export const commandMode = (template: ReadonlyArray<string>): CommandMode =>
  template.some((arg) => arg.includes(tablePlaceholder)) ? "per-table" : "all-tables"

/**
 * The arguments of one run over `tables`. A whole-argument `{tables}` becomes one argument per table; inside a
 * longer argument (`--only={tables}`) the tables are joined with commas. `{table}` is that run's one table.
 */
const expand = (template: ReadonlyArray<string>, tables: ReadonlyArray<string>): ReadonlyArray<string> =>
  template.flatMap((arg) => {
    if (arg === tablesPlaceholder) return [...tables]
    return [arg.replaceAll(tablesPlaceholder, tables.join(",")).replaceAll(tablePlaceholder, tables.join(","))]
  })

/** The commands, in order, that run `tables` through the pipeline the template describes. */
export const plan = (template: ReadonlyArray<string>, tables: ReadonlyArray<string>): ReadonlyArray<PlannedCommand> => {
  if (commandMode(template) === "per-table")
    return tables.map((table) => ({ tables: [table], argv: expand(template, [table]) }))
  const placeholder = template.some((arg) => arg.includes(tablesPlaceholder))
  return [{ tables, argv: placeholder ? expand(template, tables) : [...template, ...tables] }]
}

/** A command line as a person would type it again: arguments with spaces or quotes are quoted. */
export const describeCommand = (argv: ReadonlyArray<string>): string =>
  argv.map((arg) => (arg === "" || /[\s"'\\]/.test(arg) ? JSON.stringify(arg) : arg)).join(" ")

/** How much of a failed command's output its error keeps. */
export interface ExcerptLimits {
  /** Lines in all, error lines and last lines together (markers not counted). */
  readonly maxLines: number
  /** Of those, at most this many error lines from before the last lines. */
  readonly maxErrorLines: number
  /** Characters in all, markers not counted. */
  readonly maxChars: number
  /** A longer line keeps its start and says how much was left out. */
  readonly maxLineChars: number
}

export const defaultExcerptLimits: ExcerptLimits = { maxLines: 20, maxErrorLines: 8, maxChars: 4000, maxLineChars: 500 }

/**
 * A line that looks like an error: a word that is or ends in "error" or "exception" (`ERROR:`, `TypeError`,
 * `SQLException`), or `Traceback`, `fatal`, `panic`; case-insensitive. Plurals such as "0 errors" do not count.
 */
export const isErrorLine = (line: string): boolean =>
  /(?:^|[^a-z])[a-z]*(?:error|exception)(?![a-z])|(?:^|[^a-z])(?:traceback|fatal|panic)(?![a-z])/i.test(line)

interface NumberedLine {
  readonly index: number
  readonly text: string
}

/** What is kept of a command's output while it runs: bounded, whatever it prints. */
export interface Transcript {
  readonly lines: number
  readonly errors: ReadonlyArray<NumberedLine>
  readonly tail: ReadonlyArray<NumberedLine>
}

export const emptyTranscript: Transcript = { lines: 0, errors: [], tail: [] }

// eslint-disable-next-line no-control-regex
const ansiEscapes = /\u001b\[[0-9;?]*[A-Za-z]/g

const shorten = (line: string, limit: number) =>
  line.length <= limit ? line : `${line.slice(0, limit)} ... (${line.length - limit} more characters)`

/** Adds one line of output; blank lines and terminal colour codes are left out. */
export const addLine = (
  transcript: Transcript,
  raw: string,
  limits: ExcerptLimits = defaultExcerptLimits
): Transcript => {
  const text = shorten(raw.replace(ansiEscapes, "").trimEnd(), limits.maxLineChars)
  if (text.trim() === "") return transcript
  const line = { index: transcript.lines, text }
  return {
    lines: transcript.lines + 1,
    errors:
      transcript.errors.length < limits.maxErrorLines && isErrorLine(text)
        ? [...transcript.errors, line]
        : transcript.errors,
    tail: [...transcript.tail, line].slice(-limits.maxLines)
  }
}

const leftOut = (count: number) => `... (${count} ${count === 1 ? "line" : "lines"} left out)`

/**
 * The excerpt of a failed command's output: its first error lines and its last lines, in their order, whole lines
 * only, with a marker line where lines were left out. The error lines come first when the size runs short: they
 * usually name the cause, which a long shutdown log would otherwise push out.
 */
export const excerptOf = (transcript: Transcript, limits: ExcerptLimits = defaultExcerptLimits): string => {
  // The longest tail that leaves room for the error lines before it.
  const errorsBefore = (tailLength: number) => transcript.errors.filter((e) => e.index < transcript.lines - tailLength)
  let tailLength = Math.min(transcript.tail.length, limits.maxLines)
  while (tailLength > 0 && tailLength + errorsBefore(tailLength).length > limits.maxLines) tailLength--
  const errors = errorsBefore(tailLength).slice(0, limits.maxLines - tailLength)
  const tail = transcript.tail.slice(transcript.tail.length - tailLength)
  // Error lines in order up to half the size, then the tail from its end while the size allows.
  const chosen: Array<NumberedLine> = []
  let size = 0
  const take = (lines: ReadonlyArray<NumberedLine>, budget: number) => {
    for (const line of lines) {
      if (size + line.text.length + 1 > budget) return
      chosen.push(line)
      size += line.text.length + 1
    }
  }
  take(errors, limits.maxChars / 2)
  take([...tail].reverse(), limits.maxChars)
  chosen.sort((a, b) => a.index - b.index)
  const out: Array<string> = []
  let next = 0
  for (const line of chosen) {
    if (line.index > next) out.push(leftOut(line.index - next))
    out.push(line.text)
    next = line.index + 1
  }
  if (transcript.lines > next) out.push(leftOut(transcript.lines - next))
  return out.join("\n")
}

/** The excerpt of a whole output at once. */
export const excerpt = (output: string, limits: ExcerptLimits = defaultExcerptLimits): string =>
  excerptOf(
    output.split(/\r?\n/).reduce((t, line) => addLine(t, line, limits), emptyTranscript),
    limits
  )

/**
 * What the command's environment is: `inherit-except-ours` (the default) the whole environment without this tool's
 * own variables, but those named in ETL_PIPELINE_ENV; `inherit` everything; `clean` only PATH, HOME and the named.
 */
export const environmentModes = ["inherit-except-ours", "inherit", "clean"] as const
export type EnvironmentMode = (typeof environmentModes)[number]

/** Always passed in clean mode: without them a command cannot find its programs or its user's files. */
export const essentialVariables = ["PATH", "HOME"] as const

/**
 * The prefixes of the variables this tool reads: another pipeline may read the same names with other meanings
 * (`ETL_ENVIRONMENT=production`). `OTEL_*` are not among them: OpenTelemetry's names mean the same to every tool.
 */
export const ourVariablePrefixes = ["ETL_", "OPENDENTAL_SOURCE_", "MYSQL_REPLICATION_", "POSTGRES_ANALYTICS_"] as const

export const isVariableName = (name: string): boolean => /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)

/** The clean environment: PATH, HOME and the named variables that are set in `from`. */
export const cleanEnvironment = (
  from: Readonly<Record<string, string | undefined>>,
  passed: ReadonlyArray<string>
): Record<string, string> =>
  Object.fromEntries(
    [...essentialVariables, ...passed].flatMap((name) => {
      const value = from[name]
      return value === undefined ? [] : [[name, value] as const]
    })
  )

/** The inherited environment without this tool's own variables, but those named in `passed`. */
export const inheritedEnvironment = (
  from: Readonly<Record<string, string | undefined>>,
  passed: ReadonlyArray<string>
): Record<string, string> =>
  Object.fromEntries(
    Object.entries(from).flatMap(([name, value]) =>
      value === undefined || (!passed.includes(name) && ourVariablePrefixes.some((prefix) => name.startsWith(prefix)))
        ? []
        : [[name, value] as const]
    )
  )
