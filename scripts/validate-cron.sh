#!/usr/bin/env bash
# Scheduled validation: never two at once, logged to a rotating file.
#
#   crontab -e
#   15 2 * * * cd /opt/opendental-etl && ETL_ENVIRONMENT=production scripts/validate-cron.sh --junit reports/junit.xml
#
# Arguments go to `npm run validate`. Exit codes are validate's own (0 passed, 1 a check failed,
# 2 configuration or connection, 3 cleanup incomplete, 130 interrupted), or 75 when another run holds the lock.
# ETL_CRON_LOG_DIR (default logs), ETL_CRON_LOG_MAX_BYTES (10 MiB) and ETL_CRON_LOG_KEEP (7 old files) shape the log;
# ETL_CRON_COMMAND replaces the command (tests use it).
set -uo pipefail
cd "$(dirname "$0")/.."

log_dir="${ETL_CRON_LOG_DIR:-logs}"
max_bytes="${ETL_CRON_LOG_MAX_BYTES:-10485760}"
keep="${ETL_CRON_LOG_KEEP:-7}"
mkdir -p "$log_dir"
log="$log_dir/validate.log"
lock="$log_dir/validate.lock"
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# The lock lives as long as fd 9 is open: in this script and in the validation it starts, even if cron kills us.
exec 9>"$lock"
if ! flock --nonblock 9; then
  echo "$(now) skipped: another scheduled validation still holds $lock" >>"$log"
  exit 75
fi

if [ -f "$log" ] && [ "$(stat -c %s "$log")" -ge "$max_bytes" ]; then
  for ((i = keep - 1; i >= 1; i--)); do
    if [ -f "$log.$i" ]; then mv "$log.$i" "$log.$((i + 1))"; fi
  done
  mv "$log" "$log.1"
fi

if [ -n "${ETL_CRON_COMMAND:-}" ]; then
  read -r -a command <<<"$ETL_CRON_COMMAND"
else
  command=(npm run --silent validate -- "$@")
fi
echo "$(now) start: ${command[*]}" >>"$log"
"${command[@]}" >>"$log" 2>&1
code=$?
echo "$(now) exit $code" >>"$log"
exit "$code"
