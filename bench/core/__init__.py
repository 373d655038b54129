"""The core every other layer stands on: errors, atomic I/O, optional imports and the contracts that cross
package lines (artifacts, runners, device specs, protocols, the result record). It imports nothing else of
the project."""
