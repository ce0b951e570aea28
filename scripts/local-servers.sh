#!/usr/bin/env bash
# Makes sure a local MariaDB (127.0.0.1:3306, root, empty password) and PostgreSQL (127.0.0.1:5432, postgres,
# trust) are installed and answering: what the test suite and `npm run demo` use. Idempotent and quick when
# both already run. Installs Debian's packages only when run as root; otherwise says what to install.
set -euo pipefail

log() { printf '[local-servers] %s\n' "$*" >&2; }

mariadb_answers() { mariadb -uroot -h127.0.0.1 -P3306 -e 'SELECT 1' >/dev/null 2>&1; }
postgres_answers() { psql -h127.0.0.1 -p5432 -U postgres -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; }
wait_for() { # name, check function
  for _ in $(seq 1 60); do "$2" && return 0; sleep 1; done
  log "$1 did not answer within 60 s"; return 1
}

missing=()
[ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing: ${missing[*]}. Install them with: sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! mariadb_answers; then
  if ! mariadb-admin ping -h127.0.0.1 >/dev/null 2>&1 && ! mariadb-admin ping >/dev/null 2>&1; then
    log "starting MariaDB"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_for "MariaDB (socket)" "mariadb-admin ping"
  fi
  if ! mariadb_answers; then
    # A fresh Debian install lets root in through the Unix socket only.
    log "allowing root over 127.0.0.1 with an empty password (local test server)"
    mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
  fi
  wait_for "MariaDB" mariadb_answers
fi

if ! postgres_answers; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if ! pg_lsclusters -h 2>/dev/null | grep -q online; then
    log "starting PostgreSQL ${version}"
    pg_ctlcluster --skip-systemctl-redirect "${version}" main start
  fi
  if ! postgres_answers; then
    hba="/etc/postgresql/${version}/main/pg_hba.conf"
    log "trusting local TCP connections in ${hba} (local test server)"
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "${hba}"
    pg_ctlcluster --skip-systemctl-redirect "${version}" main reload
  fi
  wait_for "PostgreSQL" postgres_answers
fi

log "MariaDB $(mariadb -uroot -h127.0.0.1 -Nse 'SELECT VERSION()') and PostgreSQL $(psql -h127.0.0.1 -U postgres -Atc 'SHOW server_version') are answering"

# --demo-databases: the databases ETL_ENVIRONMENT=local uses (npm run demo), created when missing. The demo program
# then creates, as root and postgres, its source and the tool's own accounts on them (src/programs/demo.ts).
if [ "${1:-}" = "--demo-databases" ]; then
  mariadb -uroot -h127.0.0.1 -e "CREATE DATABASE IF NOT EXISTS opendental_demo CHARACTER SET utf8mb3; CREATE DATABASE IF NOT EXISTS opendental_demo_replication CHARACTER SET utf8mb4"
  psql -h127.0.0.1 -U postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'opendental_demo_analytics'" | grep -q 1 \
    || psql -h127.0.0.1 -U postgres -qc "CREATE DATABASE opendental_demo_analytics"
  log "demo databases opendental_demo, opendental_demo_replication and opendental_demo_analytics are there"
fi
