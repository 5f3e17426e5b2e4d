# Helpers every script uses: messages (say, warn, die), running as root, ports that are
# open, Debian packages, the processes a script starts (spawn, stop_spawned, wait_ready)
# and keeping the shared build cache small. Sourced by deploy/local/lib.sh.
# shellcheck shell=bash

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf '\033[33mwarning:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Run as root, or through sudo when we are not root.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() { # port name seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    port_open "$1" && return 0
    sleep 0.1
  done
  die "$2 did not open port $1 within $3 s"
}

apt_install() {
  say "installing Debian packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 ||
    { as_root apt-get update -q >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; } ||
    die "apt-get install $* failed"
}

# --- running the services --------------------------------------------------------------
# spawn NAME LOGFILE COMMAND…: starts a process in the background and remembers it, so
# stop_spawned (installed as an EXIT trap) stops exactly what this script started.
declare -gA SPAWNED
spawn() {
  local name=$1 log=$2
  shift 2
  "$@" >>"$log" 2>&1 &
  SPAWNED[$name]=$!
}
stop_spawned() {
  local p
  for p in "${SPAWNED[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  SPAWNED=()
}
# wait_ready URL…: until each answers 2xx (30 s at most).
wait_ready() {
  local url
  for url in "$@"; do
    for _ in $(seq 150); do curl -sf "$url" >/dev/null && break; sleep 0.2; done
    curl -sf "$url" >/dev/null || die "$url is not ready"
  done
}

# Keeps the shared build cache from filling the disk: every rebuild of a test leaves its
# previous executable behind (hundreds of MB each with debug info), and incremental state
# grows without bound. Removes, in $CARGO_TARGET_DIR/debug, the incremental state and each
# executable built more than an hour before the newest of its name (one build writes all
# of a name's current ones — a crate's binary, its lib tests and its bin tests — together;
# older ones were replaced by a later build).
prune_build_cache() {
  local deps=$CARGO_TARGET_DIR/debug/deps
  [ -d "$deps" ] || return 0
  rm -rf "$CARGO_TARGET_DIR/debug/incremental"
  python3 - "$deps" <<'PY'
import collections, os, re, sys
deps = sys.argv[1]
groups = collections.defaultdict(list)
for f in os.listdir(deps):
    path = os.path.join(deps, f)
    m = re.fullmatch(r"(.+)-([0-9a-f]{16})", f)
    if m and os.path.isfile(path) and os.access(path, os.X_OK):
        groups[m.group(1)].append(path)
freed = 0
for paths in groups.values():
    newest = max(os.path.getmtime(p) for p in paths)
    for old in [p for p in paths if os.path.getmtime(p) < newest - 3600]:
        freed += os.path.getsize(old)
        for p in (old, old + ".d"):
            if os.path.exists(p):
                os.remove(p)
if freed:
    print(f"build cache: removed {freed / 1e9:.1f} GB of replaced test executables", file=sys.stderr)
PY
}
