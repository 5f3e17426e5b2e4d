#!/usr/bin/env bash
# Checks the port table docs/ports.md against itself and against the scripts, so that it
# stays the one place ports are chosen (deploy/local/test.sh runs it first):
#   - every row's ports can be read, and no row name appears twice;
#   - no two rows share a port;
#   - no shell script under deploy/ or loadtest/ (*.sh, or a file starting with a shell
#     #!) writes a port itself: no 4–5 digit number on a line of code is a port of the
#     table (say `port_of NAME` instead), and no number after 127.0.0.1:, localhost:, -p,
#     --port, port_open or a *_PORT(S)= default is missing from the table (comments
#     included: they may name the table's ports, and no others).
# A line of code that must write a port (a script that runs without lib.sh) names its
# row with `# port-of: NAME`, and the number must be that row's; a line that holds such a
# number for another reason says so with `# not a port`.
# Exits non-zero, one line per problem, if any check fails.
#
#   deploy/local/checks/ports.sh
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"
table=$(ports_table) || die "docs/ports.md: the port table cannot be read"
problems=0
problem() { printf 'ports: %s\n' "$*" >&2; problems=$((problems + 1)); }

# --- the table itself -----------------------------------------------------------------
while read -r name count; do
  problem "docs/ports.md: the row $name appears $count times"
done < <(awk -F'|' '$2 ~ /^ *`[a-z0-9-]+` *$/ { n = $2; gsub(/[` ]/, "", n); c[n]++ }
  END { for (n in c) if (c[n] > 1) print n, c[n] }' "$PORTS_TABLE")
while read -r port names; do
  problem "docs/ports.md: port $port is in more than one row ($names)"
done < <(awk '{ rows[$2] = rows[$2] (rows[$2] == "" ? "" : ", ") $1; c[$2]++ }
  END { for (p in c) if (c[p] > 1) print p, rows[p] }' <<<"$table" | sort -n)
while read -r name port; do
  [ "$port" -ge 1 ] && [ "$port" -le 65535 ] && continue
  problem "docs/ports.md: $name has port $port, not 1–65535"
done <<<"$table"

# --- the scripts ----------------------------------------------------------------------
# The files under deploy/ and loadtest/: git's list (tracked and new, not ignored), or
# every file outside a git checkout.
files() {
  git ls-files -z --cached --others --exclude-standard -- deploy loadtest 2>/dev/null ||
    find deploy loadtest -type f -not -path '*/target/*' -print0
}
scripts=()
while IFS= read -r -d '' f; do
  case $f in *.sh) scripts+=("$f") ;; *) head -n 1 "$f" | grep -qE '^#!.*\b(ba)?sh\b' && scripts+=("$f") ;; esac
done < <(files)
[ ${#scripts[@]} -gt 0 ] || die "no scripts found under deploy/ and loadtest/"
# FILE:LINE:NUMBER:WHY for each port a script writes itself.
found=$(awk -v table="$(tr '\n' ' ' <<<"$table")" '
  BEGIN { n = split(table, t, " "); for (i = 1; i <= n; i += 2) { port[t[i + 1]] = 1; of[t[i], t[i + 1]] = 1 } }
  /# not a port/ { next }
  {
    comment = $0 ~ /^[ \t]*#/
    row = ""
    if (match($0, /# port-of: [a-z0-9-]+/)) row = substr($0, RSTART + 11, RLENGTH - 11)
    line = $0
    # a 4-5 digit number that is a port of the table (comments may name them)
    while (!comment && match(line, /(^|[^0-9A-Za-z_.\/-])[0-9][0-9][0-9][0-9][0-9]?([^0-9]|$)/)) {
      num = substr(line, RSTART, RLENGTH); gsub(/[^0-9]/, "", num)
      if ((num in port) && !((row, num) in of))
        print FILENAME ":" FNR ":" num ":" (row == "" ? "a port of the table" : "not a port of the row " row)
      line = substr(line, RSTART + RLENGTH - 1)
    }
    line = $0
    # a number where a port goes, not in the table (comments included)
    while (match(line, /(127\.0\.0\.1:|localhost:|\[::1\]:|(^| )-p |--port |port_open |_PORTS?=["'"'"']?|_PORTS?:-["'"'"']?)[0-9]+/)) {
      num = substr(line, RSTART, RLENGTH); sub(/.*[^0-9]/, "", num)
      if (num != "0" && !(num in port)) print FILENAME ":" FNR ":" num ":not in the table"
      line = substr(line, RSTART + RLENGTH)
    }
  }' "${scripts[@]}")
while IFS=: read -r file line num why; do
  [ -n "$file" ] || continue
  problem "$file:$line: port $num written in the script ($why, docs/ports.md): use port_of NAME"
done <<<"$found"

[ "$problems" = 0 ] || die "$problems problem(s) with the port table or the scripts' ports"
say "ports: $(wc -l <<<"$table") ports in $(awk '{ print $1 }' <<<"$table" | sort -u | wc -l) rows of docs/ports.md, none shared, none written in the ${#scripts[@]} scripts"
