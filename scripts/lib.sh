# Shared set-up for scripts/test, scripts/sandbox and scripts/bench: installs
# what is missing (Debian packages with apt-get, Python packages into .venv)
# and builds nothing itself. Sourced, not run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

say() { printf '==> %s\n' "$*" >&2; }

apt_install() {
    # Install Debian packages that are missing; needs root or sudo.
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

need_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo not found: install Rust (rustup) first" >&2
        exit 1
    fi
}

need_venv() {
    # moto[server], pinned, in the project's own virtual environment.
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt_install python3-venv
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating $VENV"
        python3 -m venv "$VENV"
    fi
    if ! "$VENV/bin/python" - "$ROOT/scripts/requirements-test.txt" <<'PY' >/dev/null 2>&1
import sys, importlib.metadata as m
want = [l.split('==') for l in open(sys.argv[1]) if '==' in l and not l.startswith('#')]
ok = all(m.version(n.split('[')[0]) == v.strip() for n, v in want)
sys.exit(0 if ok else 1)
PY
    then
        say "installing test servers into $VENV (scripts/requirements-test.txt)"
        "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/scripts/requirements-test.txt"
    fi
    export SUOOPS_TEST_PYTHON="$VENV/bin/python"
}

need_localstack() {
    # LocalStack (pinned) in .venv-localstack, made with the system's
    # python3 (>= 3.11: Debian 12's own works; no hand-installed interpreter).
    local LS_VENV="$ROOT/.venv-localstack"
    if ! "$LS_VENV/bin/python" - "$ROOT/scripts/requirements-localstack.txt" <<'PY' >/dev/null 2>&1
import sys, importlib.metadata as m
want = [l.split('==') for l in open(sys.argv[1]) if '==' in l and not l.startswith('#')]
sys.exit(0 if all(m.version(n.split('[')[0]) == v.strip() for n, v in want) else 1)
PY
    then
        local py="${SUOOPS_LOCALSTACK_BASE_PYTHON:-python3}"
        if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; then
            echo "error: LocalStack needs Python >= 3.11 ($py is older or missing): install Debian's python3, or set SUOOPS_LOCALSTACK_BASE_PYTHON to one" >&2
            exit 1
        fi
        "$py" -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_install python3-venv
        say "installing LocalStack into $LS_VENV with $("$py" --version 2>&1) (scripts/requirements-localstack.txt)"
        rm -rf "$LS_VENV"
        "$py" -m venv "$LS_VENV"
        "$LS_VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/scripts/requirements-localstack.txt"
    fi
    export SUOOPS_LOCALSTACK_PYTHON="$LS_VENV/bin/python"
}

need_servers() {
    # Real Redis and PostgreSQL for the tests and the sandbox (Debian).
    local pkgs=()
    command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
    command -v redis-cli >/dev/null 2>&1 || pkgs+=(redis-tools)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || pkgs+=(postgresql)
    # The TLS tests make their CA and certificates with openssl.
    command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
    # Point-in-time recovery runs pgBackRest (physical backups, WAL archive).
    command -v pgbackrest >/dev/null 2>&1 || pkgs+=(pgbackrest)
    # Client-side encryption: the tests decrypt with the stock age tool.
    command -v age >/dev/null 2>&1 || pkgs+=(age)
    # The rendered systemd units are checked with systemd-analyze verify.
    command -v systemd-analyze >/dev/null 2>&1 || pkgs+=(systemd)
    # cron.d files lock each job with flock (util-linux).
    command -v flock >/dev/null 2>&1 || pkgs+=(util-linux)
    [ ${#pkgs[@]} -eq 0 ] || apt_install "${pkgs[@]}"
    # Debian starts the packaged services; the tests start their own.
    if command -v systemctl >/dev/null 2>&1; then
        systemctl stop redis-server postgresql >/dev/null 2>&1 || true
    fi
}

need_promtool() {
    # promtool (Debian's prometheus package) checks the OpenMetrics output
    # and the example alert rules in the tests; the server is not used.
    command -v promtool >/dev/null 2>&1 || apt_install prometheus
    if command -v systemctl >/dev/null 2>&1; then
        systemctl stop prometheus >/dev/null 2>&1 || true
    fi
}

need_chromium() {
    # Headless Chromium renders the HTML audit report in the tests.
    [ -x /usr/bin/chromium ] || [ -x /usr/bin/chromium-browser ] || apt_install chromium
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_moto LOGFILE: starts moto on a free loopback port; sets MOTO_PID, MOTO_URL.
start_moto() {
    local port
    port="$(free_port)"
    "$VENV/bin/python" "$ROOT/scripts/moto_launcher.py" -H 127.0.0.1 -p "$port" >"$1" 2>&1 &
    MOTO_PID=$!
    MOTO_URL="http://127.0.0.1:$port"
    for _ in $(seq 1 200); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$MOTO_PID" 2>/dev/null; then
            echo "error: moto exited; see $1" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "error: moto did not start within 20 s; see $1" >&2
    exit 1
}

# start_redis DIR EXTRA_CONF: a redis-server with its own config file in DIR,
# on a free loopback port; prints "PID PORT".
start_redis() {
    local dir="$1" port
    port="$(free_port)"
    mkdir -p "$dir"
    printf 'port %s\nbind 127.0.0.1\ndir %s\n%s\n' "$port" "$dir" "$2" > "$dir/redis.conf"
    redis-server "$dir/redis.conf" >"$dir/redis.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    echo "$pid $port"
}

# start_postgres DIR: a throw-away cluster (initdb) on a free loopback port,
# as the postgres user when run as root; prints the port.
start_postgres() {
    local dir="$1" port bin run=()
    port="$(free_port)"
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$dir"
        run=(runuser -u postgres --)
    fi
    "${run[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >/dev/null
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir" start >/dev/null
    echo "$port"
}

stop_postgres() {
    local dir="$1" bin run=()
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    [ "$(id -u)" -eq 0 ] && run=(runuser -u postgres --)
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
}
