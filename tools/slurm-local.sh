#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, from Debian's slurm-wlm and munge: what the slurm
# backend's tests (tests/test_slurm_backend.py) submit to, and a place to try the backend by hand.
#
#   tools/slurm-local.sh up      install the packages if slurmctld is missing (root, apt), start
#                                munged, slurmctld and slurmd, wait until the node is idle;
#                                exit 0 at once when the cluster is already up
#   tools/slurm-local.sh down    stop the daemons `up` started, by the PIDs it recorded
#   tools/slurm-local.sh status  the node as sinfo sees it
#
# The config goes to /etc/slurm/slurm.conf, where Debian's sbatch, squeue and scancel look when
# SLURM_CONF is unset, so a fresh shell (CI's `make test`, a user's terminal) finds the cluster
# without any environment. A slurm.conf this script did not write is never overwritten. State,
# spool, logs and PIDs live in $AUTOENCODERS_SLURM_DIR (default /tmp/autoencoders-slurm); the
# state is kept across down/up so job ids keep increasing (a sweep's recorded job ids never
# name a newer job).
#
# What makes one node in a container work: proctrack/linuxproc and task/none (no cgroups, no
# systemd), select/cons_tres with CR_CPU_Memory and a default memory per CPU (several 1-CPU jobs
# share the node), no accounting (the backend reads job states from squeue), short scheduling
# intervals (tests wait for requeued jobs).
set -euo pipefail

DIR=${AUTOENCODERS_SLURM_DIR:-/tmp/autoencoders-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by autoencoders tools/slurm-local.sh; removed by its 'down'"
MUNGE_PID=/run/munge/munged.pid
HOST=$(hostname -s)

die() {
  echo "slurm-local: $*" >&2
  exit 1
}

running() {  # running NAME: the PID recorded for NAME is alive and is that daemon
  local pidfile="$DIR/started/$1.pid"
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}

record() {  # record NAME PIDFILE: once the daemon has written its PID file, remember it as ours
  for _ in $(seq 100); do
    if [ -s "$2" ]; then
      cp "$2" "$DIR/started/$1.pid"
      return
    fi
    sleep 0.1
  done
  die "$1 wrote no PID file ($2) within 10 s; see $DIR/log/"
}

node_state() {
  timeout 10 sinfo -h -N -n "$HOST" -o %t 2>/dev/null | head -1 || true
}

install() {
  if command -v slurmctld >/dev/null && command -v munged >/dev/null; then
    return
  fi
  [ "$(id -u)" = 0 ] || die "slurmctld is not installed and installing it needs root (apt-get)."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

start_munge() {
  if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    return  # a munged is already serving the socket: use it, and leave it running on `down`
  fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 0755 /run/munge
  if [ ! -f /etc/munge/munge.key ]; then
    mungekey --create
    chown munge:munge /etc/munge/munge.key
  fi
  runuser -u munge -- /usr/sbin/munged
  record munged "$MUNGE_PID"
}

write_conf() {
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script; not touching it."
  fi
  local mem_mb
  mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
  mem_mb=$((mem_mb - (mem_mb / 10 > 1024 ? mem_mb / 10 : 1024)))  # leave the OS some room
  mkdir -p /etc/slurm "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/started"
  cat >"$CONF" <<EOF
$MARK
ClusterName=autoencoders
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
# Start queued and requeued jobs within seconds, not a minute: a requeued job may start again
# cred_expire + 1 s after its requeue (120 s by default).
SchedulerParameters=sched_interval=2,bf_interval=2
AuthInfo=cred_expire=10
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=$HOST CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=1024
EOF
}

up() {
  if running slurmctld && running slurmd && [[ "$(node_state)" =~ ^(idle|mix|alloc) ]]; then
    echo "slurm-local: already up ($HOST, config $CONF)"
    return
  fi
  install
  mkdir -p "$DIR/started"
  start_munge
  if ! running slurmctld; then
    write_conf
    slurmctld
    record slurmctld "$DIR/slurmctld.pid"
  fi
  if ! running slurmd; then
    slurmd
    record slurmd "$DIR/slurmd.pid"
  fi
  local state
  for _ in $(seq 60); do
    state=$(node_state)
    if [[ "$state" =~ ^(idle|mix|alloc) ]]; then
      echo "slurm-local: up: node $HOST $state, $(nproc) CPUs, config $CONF, logs $DIR/log"
      return
    fi
    if [[ "$state" =~ ^(down|drain) ]]; then
      scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
    fi
    sleep 1
  done
  die "node $HOST is not idle after 60 s (state '${state:-none}'); see $DIR/log/"
}

down() {
  local name pid
  for name in slurmd slurmctld munged; do
    if running "$name"; then
      pid=$(cat "$DIR/started/$name.pid")
      kill "$pid"
      for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
      done
      echo "slurm-local: stopped $name (pid $pid)"
    fi
    rm -f "$DIR/started/$name.pid"
  done
  if [ -f "$CONF" ] && grep -qF "$MARK" "$CONF"; then
    rm -f "$CONF"  # a fresh shell's sbatch now fails at once instead of waiting for a controller
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) sinfo -N ;;
  *)
    echo "usage: tools/slurm-local.sh up|down|status" >&2
    exit 2
    ;;
esac
