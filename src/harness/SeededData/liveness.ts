import { readFileSync } from "node:fs"
import { errorCode } from "../../domain/unknownValues.ts"

/**
 * Whether a process of this host still runs. Signal 0 reaches a process killed a moment ago until its parent reaps
 * it (a zombie), so where Linux's /proc tells a process's state, a zombie counts as gone.
 */
export const isRunning = (pid: number): boolean => {
  const state = processState(pid)
  if (state !== undefined) return state !== "Z" && state !== "X"
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    // Another user's process answers EPERM: it runs.
    return errorCode(e) === "EPERM"
  }
}

/** The state letter of /proc/<pid>/stat (R, S, D, Z ...), X without such a process; undefined without /proc. */
const processState = (pid: number): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name in parentheses may hold spaces and parentheses: the state follows the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)
  } catch (e) {
    if (errorCode(e) === "ENOENT" && hasProc()) return "X"
    return undefined
  }
}

const hasProc = () => {
  try {
    readFileSync("/proc/self/stat", "utf8")
    return true
  } catch {
    return false
  }
}
