#!/usr/bin/env bash
# A single-node SLURM on this machine, for trying and testing the SLURM execution profile.
#
#   hpc/slurm-local.sh up       install (Debian packages), configure on loopback, start, wait for an idle node
#   hpc/slurm-local.sh status   show the node
#   hpc/slurm-local.sh down     stop the daemons this script started (nothing else)
#
# Needs root and apt (Debian 12: slurm-wlm 22.05, munge 0.5.15). No systemd or cgroups: the daemons
# run directly, with proctrack/linuxproc and task/none, and listen on 127.0.0.1 only. There is no
# accounting database, so clients query job states with squeue (completed jobs stay listed for
# MinJobAge seconds): run Snakemake with `--slurm-status-command squeue` (docs/hpc.md). Safe to
# repeat: `up` reuses installed packages and running daemons, `down` only stops what `up` started.
# State, logs and PID files live in $SHEETFILL_SLURM_STATE (default /var/tmp/sheetfill-slurm).
set -euo pipefail

STATE=${SHEETFILL_SLURM_STATE:-/var/tmp/sheetfill-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by sheetfill hpc/slurm-local.sh"
HOST=$(hostname -s)

die() { echo "slurm-local: $*" >&2; exit 1; }
log() { echo "slurm-local: $*" >&2; }

require_root() {
  [ "$(id -u)" = 0 ] || die "needs root (it installs packages and starts system daemons); run it with sudo"
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
      && command -v sbatch >/dev/null; then
    return
  fi
  command -v apt-get >/dev/null || die "no apt-get: install slurmctld, slurmd, slurm-client and munge yourself"
  log "installing slurmctld slurmd slurm-client munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

# srun/sbatch steps connect back to the node by its name: it must resolve to 127.0.0.1 exactly
# (Debian's usual "127.0.1.1 <host>" makes every step hang with "Slurmd could not connect IO").
fix_hosts() {
  if [ "$(getent ahostsv4 "$HOST" | awk 'NR==1 {print $1}')" != 127.0.0.1 ]; then
    cp /etc/hosts "$STATE/hosts.orig"
    { echo "127.0.0.1 $HOST $MARK"; cat "$STATE/hosts.orig"; } > /etc/hosts
    log "$HOST now resolves to 127.0.0.1 (/etc/hosts; restored by 'down')"
  fi
}

write_config() {
  if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script; refusing to overwrite a real SLURM setup"
  fi
  local cpus mem
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)  # MB, leaving headroom
  mkdir -p /etc/slurm "$STATE/state" "$STATE/spool"
  cat > "$CONF" <<EOF
$MARK ($(date -u +%FT%TZ)); removed by 'hpc/slurm-local.sh down'
ClusterName=sheetfill-local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
MpiDefault=none
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
  if pgrep -x munged >/dev/null; then
    return  # someone else's munged serves us as well; leave it alone
  fi
  [ -s /etc/munge/munge.key ] || { mungekey --create --force 2>/dev/null || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  cp /run/munge/munged.pid "$STATE/munged.pid"  # ours to stop
}

# Start a SLURM daemon unless it runs already. The daemons write their PID files themselves
# (slurm.conf points them into $STATE). One running without its PID file (state dir wiped) uses our
# slurm.conf (write_config refused any other), so it is adopted rather than started twice.
start_daemon() {
  local name=$1 pidfile="$STATE/$1.pid" other
  running "$pidfile" && return
  rm -f "$pidfile"
  other=$(pgrep -x "$name" | head -1 || true)
  if [ -n "$other" ]; then
    log "$name already running (pid $other); adopting it"
    echo "$other" > "$pidfile"
    return
  fi
  "$name" -f "$CONF"
}

start_daemons() {
  start_daemon slurmctld
  start_daemon slurmd
}

wait_idle() {
  local state=""
  for _ in $(seq 1 150); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)
    case "$state" in
      idle|mixed|allocated) log "node $HOST is $state"; return 0 ;;
      down*|drain*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.2
  done
  die "node did not become idle (last state: '${state:-none}'); see $STATE/slurmctld.log and $STATE/slurmd.log"
}

up() {
  require_root
  mkdir -p "$STATE"
  install_packages
  fix_hosts
  write_config
  start_munge
  start_daemons
  wait_idle
}

# Stop the daemons behind the given PID files (all signalled at once: each takes ~2 s to exit),
# SIGKILL what is left after 10 s, and remove the PID files (a stale one breaks a later package purge).
stop_pidfiles() {
  local file pids=()
  for file in "$@"; do
    if running "$file"; then pids+=("$(cat "$file")"); fi
  done
  if [ ${#pids[@]} -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    local pid alive
    for _ in $(seq 1 100); do
      alive=()
      for pid in "${pids[@]}"; do if kill -0 "$pid" 2>/dev/null; then alive+=("$pid"); fi; done
      [ ${#alive[@]} -eq 0 ] && break
      sleep 0.1
    done
    for pid in "${alive[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  fi
  rm -f "$@"
}

down() {
  require_root
  stop_pidfiles "$STATE/slurmd.pid" "$STATE/slurmctld.pid"
  if [ -f "$STATE/munged.pid" ]; then
    stop_pidfiles "$STATE/munged.pid"
    rm -f /run/munge/munged.pid
  fi
  # Without a controller, a slurm.conf makes every `scontrol` wait 9 s for one; the SLURM executor
  # plugin runs `scontrol show config` whenever Snakemake starts, even for local runs.
  if [ -f "$CONF" ] && grep -qF "$MARK" "$CONF"; then
    rm -f "$CONF"
  fi
  if grep -qF "$MARK" /etc/hosts; then  # drop only our line; keep the file (often a bind mount)
    grep -vF "$MARK" /etc/hosts > "$STATE/hosts.new" || true
    cat "$STATE/hosts.new" > /etc/hosts
    rm -f "$STATE/hosts.new"
  fi
  rm -f "$STATE/hosts.orig"
  log "stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status)
    for daemon in munged slurmctld slurmd; do
      if running "$STATE/$daemon.pid"; then echo "$daemon: running (pid $(cat "$STATE/$daemon.pid"))"
      else echo "$daemon: not started by this script"; fi
    done
    if [ -f "$CONF" ]; then sinfo -N -l; else echo "no $CONF"; fi ;;
  *) die "usage: $0 up|down|status" ;;
esac
