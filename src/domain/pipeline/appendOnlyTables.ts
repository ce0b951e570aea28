/**
 * OpenDental's own logs whose rows are written once and never updated: each run copies only the keys above the
 * last one it copied (`ETL_APPEND_ONLY_TABLES` replaces this list). Chosen from the schema facts of a real clinic
 * (../shared/reference/opendental-schema.json: row counts and the old ETL's key-ordered chunks) and from what
 * OpenDental does with each table, not from the facts' `syncProfile`, which calls 396 of 446 tables append-only
 * (`account` and `definition` among them, both edited in place).
 *
 * Left out on purpose:
 * - `sheetfield` (1.6 million rows): OpenDental updates a sheet's fields in place when the sheet is edited or
 *   signed (SheetFields.Sync inserts, updates and deletes), so key-ordered copies would keep stale values until
 *   the reconcile. It has no change column either: it is copied whole when the server proves it changed.
 * - `claimcondcodelog`, `claimvalcodelog`: despite the name, a claim's condition and value codes, edited with it.
 * - `promotionlog`, `etrans`, `signalod`: their status columns are updated after the insert.
 *
 * Deletes (OpenDental archives old audit-trail rows) and any update are the reconcile's job, not the copy's.
 */
export const openDentalAppendOnlyTables: ReadonlyArray<string> = [
  // The audit trail (4.7 million rows each): an entry and its hash are never edited, the hash chain depends on it.
  "securitylog",
  "securityloghash",
  // Procedure notes are locked once saved: an edit adds a new row and the older ones are the note's history.
  "procnote",
  // Insurance edit logs, one row per change made to a plan or a patient's plan.
  "inseditlog",
  "inseditpatlog",
  "insbluebooklog",
  // A copy of an appointment made each time it is edited.
  "histappointment",
  // Time-clock kiosk entries, database maintenance runs, eRx and eService messages, failed sign-ins, ortho chart
  // changes, collection-agency transactions, wiki page and list history, version updates.
  "entrylog",
  "dbmlog",
  "erxlog",
  "eservicelog",
  "loginattempt",
  "orthochartlog",
  "tsitranslog",
  "wikilisthist",
  "updatehistory"
]
