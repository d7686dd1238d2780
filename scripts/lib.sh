# shellcheck shell=bash
# Shared helpers for scripts/start, scripts/test and scripts/lock.
#
# Source it from a script that runs under `set -euo pipefail`; it only defines
# variables and functions and never changes shell options. Every message goes to
# stderr with a "roadchief:" prefix so that stdout stays whatever the app prints.
#
# Knobs (all optional):
#   ROADCHIEF_PYTHON    interpreter to build .venv with (must be Python 3.11)
#   ROADCHIEF_PG_MAJOR  PostgreSQL major version to use for scripts/test

ROADCHIEF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROADCHIEF_VENV="$ROADCHIEF_ROOT/.venv"
# Python that builds .venv; filled in by ensure_python.
ROADCHIEF_PY=""
# The stamp records what .venv was last installed from; see ensure_venv.
ROADCHIEF_STAMP="$ROADCHIEF_VENV/.roadchief-installed.sha256"
_roadchief_apt_updated=0

say() { printf 'roadchief: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

# ---------------------------------------------------------------------------
# System packages
# ---------------------------------------------------------------------------

_have() { command -v "$1" >/dev/null 2>&1; }

_is_debian_like() { _have dpkg-query && _have apt-get; }

# Prints "ID VERSION_ID" from /etc/os-release, e.g. "debian 12" or "ubuntu 22.04".
_os_id() {
    (
        # shellcheck disable=SC1091
        [[ -r /etc/os-release ]] && . /etc/os-release
        echo "${ID:-unknown} ${VERSION_ID:-}"
    )
}

_pkg_installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ $status == "install ok installed" ]]
}

# Finds SpatiaLite's loadable SQLite extension without relying on a package manager.
_find_mod_spatialite() {
    # The app loads ROADCHIEF_SPATIALITE_LIBRARY when set (a name or a full path).
    if [[ -n ${ROADCHIEF_SPATIALITE_LIBRARY:-} && -e ${ROADCHIEF_SPATIALITE_LIBRARY} ]]; then
        return 0
    fi
    if _have ldconfig && ldconfig -p 2>/dev/null | grep -q 'mod_spatialite'; then
        return 0
    fi
    local pattern
    for pattern in /usr/lib/*/mod_spatialite.so* /usr/lib/mod_spatialite.so* \
        /usr/lib64/mod_spatialite.so* /usr/local/lib/mod_spatialite.* \
        /opt/homebrew/lib/mod_spatialite.* /opt/local/lib/mod_spatialite.*; do
        [[ -e $pattern ]] && return 0
    done
    return 1
}

# Highest N with /usr/lib/postgresql/N/bin/initdb, preferring one whose PostGIS
# is installed too (Debian's layout; several majors can sit side by side).
_installed_pg_major() {
    local initdb major best="" best_postgis=""
    for initdb in /usr/lib/postgresql/*/bin/initdb; do
        [[ -x $initdb ]] || continue
        major=${initdb#/usr/lib/postgresql/}
        major=${major%%/*}
        [[ $major =~ ^[0-9]+$ ]] || continue
        if [[ -z $best ]] || ((major > best)); then best=$major; fi
        if [[ -f /usr/share/postgresql/$major/extension/postgis.control ]] &&
            { [[ -z $best_postgis ]] || ((major > best_postgis)); }; then
            best_postgis=$major
        fi
    done
    [[ -n $best_postgis ]] && { echo "$best_postgis"; return 0; }
    [[ -n $best ]] && { echo "$best"; return 0; }
    return 1
}

# pg_major: the PostgreSQL major version scripts/test installs and runs.
# Order: $ROADCHIEF_PG_MAJOR, an installed server, the distribution's default
# (apt's candidate for the "postgresql" metapackage, else a table of releases).
pg_major() {
    local major candidate
    if [[ -n ${ROADCHIEF_PG_MAJOR:-} ]]; then
        echo "$ROADCHIEF_PG_MAJOR"
        return 0
    fi
    if major=$(_installed_pg_major); then
        echo "$major"
        return 0
    fi
    if ! _is_debian_like && _have pg_config; then
        major=$(pg_config --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9][0-9]*\).*/\1/p')
        [[ -n $major ]] && { echo "$major"; return 0; }
    fi
    if _have apt-cache; then
        # e.g. "Candidate: 15+248+deb12u2" -> 15; "(none)" when apt has no lists yet.
        candidate=$(apt-cache policy postgresql 2>/dev/null | awk '/Candidate:/ {print $2; exit}')
        major=${candidate%%+*}
        [[ $major =~ ^[0-9]+$ ]] && { echo "$major"; return 0; }
    fi
    case "$(_os_id)" in
        "debian 11") echo 13 ;;
        "debian 13") echo 17 ;;
        "ubuntu 20.04") echo 12 ;;
        "ubuntu 22.04") echo 14 ;;
        "ubuntu 24.04") echo 16 ;;
        *) echo 15 ;; # Debian 12 (bookworm), what production and CI use
    esac
}

# pg_bindir MAJOR: directory holding initdb/pg_ctl/postgres, or nothing.
pg_bindir() {
    local major=$1 dir
    if [[ -x /usr/lib/postgresql/$major/bin/initdb ]]; then
        echo "/usr/lib/postgresql/$major/bin"
        return 0
    fi
    # Other layouts (Homebrew, Fedora, source builds): initdb or pg_config on PATH,
    # if it is that major.
    for dir in "$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")" \
        "$(pg_config --bindir 2>/dev/null || true)"; do
        [[ -n $dir && -x $dir/initdb ]] || continue
        if [[ $("$dir/initdb" --version 2>/dev/null) =~ \)\ ([0-9]+) ]] &&
            [[ ${BASH_REMATCH[1]} == "$major" ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

# Whether what a Debian package would provide is present anyway (non-Debian hosts).
_provided_anyway() {
    local pkg=$1 bindir sharedir major
    case "$pkg" in
        libsqlite3-mod-spatialite) _find_mod_spatialite ;;
        postgresql-*-postgis-*)
            major=${pkg#postgresql-}
            major=${major%%-*}
            bindir=$(pg_bindir "$major") || return 1
            sharedir=$("$bindir/pg_config" --sharedir 2>/dev/null ||
                pg_config --sharedir 2>/dev/null) || return 1
            [[ -f $sharedir/extension/postgis.control ]]
            ;;
        postgresql-[0-9]*) pg_bindir "${pkg#postgresql-}" >/dev/null ;;
        *) return 1 ;;
    esac
}

# ensure_system_packages PKG...: installs the missing Debian packages, with root or
# passwordless sudo, non-interactively (CI has no stdin); otherwise tells the
# user the one command to run and stops.
ensure_system_packages() {
    local pkg missing=() log
    if ! _have dpkg-query; then
        for pkg in "$@"; do
            _provided_anyway "$pkg" || missing+=("$pkg")
        done
        ((${#missing[@]} == 0)) && return 0
        say "this is not a Debian/Ubuntu system, so its packages cannot be installed for you."
        say "Missing (Debian names): ${missing[*]}"
        say "roadchief needs SpatiaLite's loadable extension mod_spatialite for its default"
        say "SQLite database, and PostgreSQL 15 + PostGIS 3 (initdb, pg_ctl and the postgis"
        say "extension) for scripts/test. Install them with your package manager, e.g."
        say "  brew install spatialite-tools postgresql@15 postgis"
        say "  dnf install libspatialite postgresql-server postgis"
        say "and put PostgreSQL's bin directory on PATH (or set ROADCHIEF_PG_MAJOR)."
        exit 1
    fi

    for pkg in "$@"; do
        _pkg_installed "$pkg" || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0

    local -a sudo=()
    if ((EUID != 0)); then
        if _have sudo && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            say "Missing system packages. Run: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
            exit 1
        fi
    fi

    say "installing system packages: ${missing[*]} (takes a minute the first time)"
    log=$(mktemp "${TMPDIR:-/tmp}/roadchief-apt.XXXXXX")
    # Fresh machines and containers often have no package lists at all, so update
    # once per run before the first install.
    if ((!_roadchief_apt_updated)); then
        if ! ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
            apt-get update -qq >"$log" 2>&1; then
            cat "$log" >&2
            say "warning: apt-get update failed; trying the install with the lists we have"
        fi
        _roadchief_apt_updated=1
    fi
    if ! ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "could not install: ${missing[*]} (apt-get output above)"
    fi
    rm -f "$log"
}

# ---------------------------------------------------------------------------
# Python and the virtualenv
# ---------------------------------------------------------------------------

# Prints the real path of the first Python 3.11 found, or fails.
_find_python() {
    local cand version
    for cand in ${ROADCHIEF_PYTHON:+"$ROADCHIEF_PYTHON"} python3.11 python3 \
        /usr/bin/python3.11 /usr/local/bin/python3.11; do
        _have "$cand" || continue
        # Running it also weeds out pyenv shims that point at nothing.
        version=$("$cand" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) ||
            continue
        if [[ $version == 3.11 ]]; then
            "$cand" -c 'import sys; print(sys.executable)'
            return 0
        fi
        if [[ $cand == "${ROADCHIEF_PYTHON:-}" ]]; then
            say "warning: ROADCHIEF_PYTHON=$cand is Python $version, not 3.11; looking further"
        fi
    done
    return 1
}

_debian_default_python_is_311() {
    [[ -x /usr/bin/python3 ]] &&
        [[ $(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) == 3.11 ]] && return 0
    [[ $(_os_id) == "debian 12" ]]
}

# ensure_python: sets ROADCHIEF_PY to a Python 3.11 that can make virtualenvs.
ensure_python() {
    ROADCHIEF_PY=$(_find_python) || ROADCHIEF_PY=""
    if [[ -z $ROADCHIEF_PY ]]; then
        if _is_debian_like && _debian_default_python_is_311; then
            # Debian 12's python3 is 3.11.
            ensure_system_packages python3 python3-venv
        elif _is_debian_like && apt-cache show python3.11 >/dev/null 2>&1; then
            ensure_system_packages python3.11 python3.11-venv
        else
            die "no Python 3.11 found (roadchief requires >=3.11,<3.12). Install one, e.g." \
                "'pyenv install 3.11' or your distribution's python3.11 package, or point" \
                "ROADCHIEF_PYTHON at it."
        fi
        ROADCHIEF_PY=$(_find_python) || die "Python 3.11 is still not on PATH after installing it"
    fi

    # Debian splits venv/ensurepip out of the interpreter (python3-venv); without it
    # `python -m venv` fails halfway and leaves a venv without pip.
    if ! "$ROADCHIEF_PY" -c 'import venv, ensurepip; ensurepip.version()' >/dev/null 2>&1; then
        if _is_debian_like && [[ $ROADCHIEF_PY == /usr/bin/* ]]; then
            if _debian_default_python_is_311; then
                ensure_system_packages python3-venv
            else
                ensure_system_packages python3.11-venv
            fi
        fi
        "$ROADCHIEF_PY" -c 'import venv, ensurepip; ensurepip.version()' >/dev/null 2>&1 ||
            die "$ROADCHIEF_PY cannot create virtualenvs (its venv/ensurepip modules are missing)"
    fi
}

# Hash of everything .venv's contents are derived from.
_install_fingerprint() {
    "$ROADCHIEF_VENV/bin/python" - "$ROADCHIEF_ROOT/requirements.lock" "$ROADCHIEF_ROOT/pyproject.toml" <<'PY'
import hashlib, sys
h = hashlib.sha256(sys.version.encode())
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        h.update(hashlib.sha256(f.read()).digest())
print(h.hexdigest())
PY
}

# _pip_quietly DESCRIPTION ARGS...: pip's chatter (and the harmless find-links
# warnings) goes to a log that is shown only when pip fails.
_pip_quietly() {
    local what=$1 log="$ROADCHIEF_VENV/.roadchief-pip.log"
    shift
    if ! "$ROADCHIEF_VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
        "$@" >"$log" 2>&1; then
        cat "$log" >&2
        die "installing $what into .venv failed (pip output above, also in $log)"
    fi
}

# ensure_venv: creates .venv if needed and installs requirements.lock plus the
# project (editable) into it, but only when requirements.lock or pyproject.toml
# changed since the last successful install, so that repeat runs start at once.
ensure_venv() {
    local py="$ROADCHIEF_VENV/bin/python" want have=""
    [[ -n $ROADCHIEF_PY ]] || ensure_python
    [[ -f $ROADCHIEF_ROOT/requirements.lock ]] ||
        die "requirements.lock is missing; generate it with scripts/lock"

    # A venv whose base interpreter vanished (a dangling symlink) or is not 3.11
    # cannot be repaired by pip.
    if [[ -e $py || -L $py ]] && ! "$py" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
        say ".venv is broken or not Python 3.11; recreating it"
        rm -rf "$ROADCHIEF_VENV"
    fi
    if [[ ! -x $py ]]; then
        say "creating .venv with $ROADCHIEF_PY"
        "$ROADCHIEF_PY" -m venv "$ROADCHIEF_VENV" || die "could not create .venv"
    fi

    want=$(_install_fingerprint)
    [[ -f $ROADCHIEF_STAMP ]] && have=$(<"$ROADCHIEF_STAMP")
    # The metadata check catches a project uninstalled by hand behind the stamp's back.
    if [[ $want == "$have" ]] &&
        "$py" -c 'import importlib.metadata as m; m.distribution("roadchief")' 2>/dev/null; then
        return 0
    fi

    say "installing dependencies into .venv from requirements.lock (quiet; takes a minute the first time)"
    rm -f "$ROADCHIEF_STAMP"
    _pip_quietly requirements.lock --require-hashes -r "$ROADCHIEF_ROOT/requirements.lock"
    _pip_quietly "the roadchief project" --no-deps -e "$ROADCHIEF_ROOT"
    echo "$want" >"$ROADCHIEF_STAMP"
    say ".venv is ready"
}
