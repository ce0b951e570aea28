/** The tool's version, as `--version` prints it and the metrics history records it. */
export const toolVersion = "0.2.0"
