# Every port the stack and the scripts use, read from the one table in docs/ports.md, so
# the page and the scripts cannot drift apart: port_of NAME gives a row's port(s), and
# deploy/local/checks/ports.sh checks the table and the scripts against each other.
# Sourced by deploy/local/lib.sh (first after common.sh: the others take their ports here).
# shellcheck shell=bash

PORTS_TABLE=$REPO_ROOT/docs/ports.md

# ports_table: each port of the table as a line "NAME PORT", in the table's order. A row
# is a line `| \`name\` | ports | what | script |`; its ports are numbers and ranges
# (7001–7006), separated by commas. Fails on a port cell it cannot read.
ports_table() {
  awk -F'|' '
    $2 ~ /^ *`[a-z0-9-]+` *$/ {
      name = $2; gsub(/[` ]/, "", name)
      cell = $3; gsub(/–/, "-", cell); gsub(/,/, " ", cell)
      n = split(cell, items, " ")
      if (n == 0) bad = bad " " name
      for (i = 1; i <= n; i++) {
        if (items[i] ~ /^[0-9]+-[0-9]+$/) {
          split(items[i], r, "-")
          for (p = r[1] + 0; p <= r[2] + 0; p++) print name, p
        } else if (items[i] ~ /^[0-9]+$/) {
          print name, items[i] + 0
        } else {
          bad = bad " " name
        }
      }
    }
    END { if (bad != "") { print "docs/ports.md: unreadable port cell in row(s)" bad > "/dev/stderr"; exit 1 } }
  ' "$PORTS_TABLE"
}

# port_of NAME: the port(s) of the row NAME of docs/ports.md, space-separated, in order;
# dies if there is no such row. Call it in an assignment (x=$(port_of NAME)) so that its
# failure stops a script under set -e.
port_of() {
  local table ports
  table=$(ports_table) || die "cannot read the port table $PORTS_TABLE"
  ports=$(awk -v n="$1" '$1 == n { printf "%s%s", sep, $2; sep = " " }' <<<"$table")
  [ -n "$ports" ] || die "no row named $1 in the port table $PORTS_TABLE"
  printf '%s\n' "$ports"
}
