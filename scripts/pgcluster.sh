# scripts/pgcluster.sh: a throwaway PostgreSQL cluster for tests and benchmarks.
# Source after lib.sh, then `start_throwaway_postgres MAJOR`: it starts the cluster on a
# free loopback port, sets PG_PORT and PG_URL, and removes everything when the script
# exits (Ctrl-C and kill included).
# shellcheck shell=bash

PG_TMP=""  # temp dir holding the cluster: data/, the socket, the logs
PG_DATA=""
PG_BIN=""
PG_RUN=()  # prefix that runs a command as the cluster's owner

_su_postgres() { su -s /bin/bash postgres -c "$(printf '%q ' "$@")"; }

as_pg() { ${PG_RUN[@]+"${PG_RUN[@]}"} "$@"; }

now() {
    # EPOCHREALTIME (bash 5) gives sub-second timing; its decimal mark follows the locale.
    local t=${EPOCHREALTIME:-$SECONDS}
    echo "${t/,/.}"
}

stop_cluster() {
    [[ -n $PG_TMP ]] || return 0
    if [[ -f $PG_DATA/postmaster.pid ]]; then
        # Immediate mode: nothing in it is worth a clean checkpoint.
        as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m immediate -s >/dev/null 2>&1 || true
    fi
    rm -rf "$PG_TMP"
    PG_TMP=""
}

free_port() {
    "$ROADCHIEF_VENV/bin/python" -c \
        'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_cluster MAJOR: initdb + pg_ctl start; sets PG_PORT.
start_cluster() {
    local major=$1 started attempt version postgis
    started=$(now)
    PG_BIN=$(pg_bindir "$major") || die "PostgreSQL $major's initdb was not found"

    if ((EUID == 0)); then
        # PostgreSQL refuses to run as root, so the cluster belongs to the unprivileged
        # postgres user that Debian's postgresql package creates. /tmp (not $TMPDIR)
        # because that user must be able to reach the directory.
        id -u postgres >/dev/null 2>&1 ||
            die "PostgreSQL will not run as root and there is no 'postgres' user to run it as"
        if _have runuser; then PG_RUN=(runuser -u postgres --); else PG_RUN=(_su_postgres); fi
        PG_TMP=$(mktemp -d /tmp/roadchief-pg.XXXXXX)
        chown postgres: "$PG_TMP"
    else
        PG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/roadchief-pg.XXXXXX")
    fi
    PG_DATA=$PG_TMP/data

    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres --no-sync -E UTF8 \
        --locale=C >"$PG_TMP/initdb.log" 2>&1; then
        cat "$PG_TMP/initdb.log" >&2
        die "initdb failed (output above)"
    fi
    # Throwaway cluster: durability settings off for speed; reachable only from this
    # machine; its socket stays in the temp dir, away from a system server's.
    cat >>"$PG_DATA/postgresql.conf" <<EOF

# --- scripts/test: throwaway cluster ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_TMP'
fsync = off
synchronous_commit = off
full_page_writes = off
# Plan as for the SSDs a deployment runs on (PostgreSQL's default of 4 assumes disks
# that seek): index lookups are cheap.
random_page_cost = 1.1
EOF

    # The free port may be taken between choosing and binding it: try a few.
    for attempt in 1 2 3; do
        PG_PORT=$(free_port)
        if as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_TMP/postgres.log" -w -t 60 -s \
            -o "-p $PG_PORT" >/dev/null 2>&1; then
            break
        fi
        if ((attempt == 3)); then
            tail -n 30 "$PG_TMP/postgres.log" >&2 || true
            die "PostgreSQL did not start (its log above)"
        fi
    done

    version=$("$PG_BIN/postgres" --version | sed -n 's/.*(PostgreSQL) \([^ ]*\).*/\1/p')
    postgis=""
    if [[ -x $PG_BIN/psql ]]; then
        postgis=$("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -XAtq -c \
            "select default_version from pg_available_extensions where name = 'postgis'" 2>/dev/null) ||
            true
        [[ -n $postgis ]] || say "warning: PostGIS is not available to this cluster; PostgreSQL tests will fail"
    fi
    say "throwaway PostgreSQL ${version:-$major}${postgis:+ + PostGIS $postgis} up on" \
        "127.0.0.1:$PG_PORT in $(awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')s"
}

# start_throwaway_postgres MAJOR: the cluster, its clean-up traps, and PG_URL.
start_throwaway_postgres() {
    trap stop_cluster EXIT
    # exit from these runs the EXIT trap, so Ctrl-C and kill clean up too.
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    start_cluster "$1"
    PG_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
    export PG_URL
}
