#!/usr/bin/env bash
# Single-node SLURM 22.05 cluster for CI and local tests (Debian 12, no systemd).
#
#   bash .ci/slurm-cluster.sh install   # apt-get install slurmctld slurmd slurm-client munge (idempotent)
#   bash .ci/slurm-cluster.sh start     # write config, start munged + slurmctld + slurmd, wait for idle node
#   bash .ci/slurm-cluster.sh status    # sinfo + squeue
#   bash .ci/slurm-cluster.sh stop      # cancel jobs, stop the daemons started by `start` (pid files)
#
# Environment:
#   SLURM_CI_DIR          state/spool/log/pid dir (default /tmp/lionsweep-slurm)
#   SLURM_CI_CONF_DIR     where slurm.conf + gres.conf are written (default /etc/slurm, the
#                         place every SLURM client looks); a slurm.conf there that this script
#                         did not write is never overwritten
#   SLURM_CI_TIMEOUT      seconds `start` waits for the node to become idle (default 60)
#   SLURM_CI_MEM_MB       RealMemory of the node in MB (default: 75% of MemTotal)
#   SLURM_CI_DEFMEMPERCPU DefMemPerCPU in MB (default 1024)
#   SLURM_CI_GPUS         number of fake GPUs on the node, 1-4 (default 1)
#
# The node is the machine itself (`hostname -s`), partition `debug` (default), fake GPUs
# (gres gpu:N backed by /dev/null, /dev/zero, ...) so that GPU requests can be scheduled. No accounting
# database: job status comes from squeue, and MinJobAge=600 keeps finished jobs visible there.
# Needs root (CI runs as root).
set -euo pipefail

SLURM_CI_DIR="${SLURM_CI_DIR:-/tmp/lionsweep-slurm}"
CONF_DIR="${SLURM_CI_CONF_DIR:-/etc/slurm}"
TIMEOUT="${SLURM_CI_TIMEOUT:-60}"
DEF_MEM_PER_CPU="${SLURM_CI_DEFMEMPERCPU:-1024}"
GPUS="${SLURM_CI_GPUS:-1}"
# Each fake GPU needs its own existing device file (a GPU without File= drains the node).
FAKE_GPU_FILES=(/dev/null /dev/zero /dev/full /dev/urandom)
MARKER="# Managed by lion-sweep .ci/slurm-cluster.sh"
PARTITION="debug"
PACKAGES=(slurmctld slurmd slurm-client munge)

MUNGE_DIR="${SLURM_CI_DIR}/munge"
MUNGE_SOCKET_DIR="/run/munge"
MUNGE_PID="${MUNGE_DIR}/munged.pid"
CTLD_PID="${SLURM_CI_DIR}/run/slurmctld.pid"
SLURMD_PID="${SLURM_CI_DIR}/run/slurmd.pid"
CTLD_LOG="${SLURM_CI_DIR}/log/slurmctld.log"
SLURMD_LOG="${SLURM_CI_DIR}/log/slurmd.log"

log() { printf '[slurm-cluster] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

need_root() {
    [[ "$(id -u)" -eq 0 ]] || die "must run as root (it starts munged/slurmctld/slurmd)"
}

# pid from a pid file if that process is alive and is the expected program, else empty.
live_pid() {
    local pidfile="$1" comm="$2" pid
    [[ -s "$pidfile" ]] || return 0
    pid="$(tr -dc '0-9' <"$pidfile")"
    [[ -n "$pid" ]] || return 0
    if kill -0 "$pid" 2>/dev/null && [[ "$(cat "/proc/${pid}/comm" 2>/dev/null)" == "$comm" ]]; then
        echo "$pid"
    fi
}

wait_pid_file() {
    local pidfile="$1" comm="$2" i
    for ((i = 0; i < 100; i++)); do
        [[ -n "$(live_pid "$pidfile" "$comm")" ]] && return 0
        sleep 0.1
    done
    return 1
}

show_logs() {
    local f
    for f in "$CTLD_LOG" "$SLURMD_LOG" "${MUNGE_DIR}/munged.log"; do
        if [[ -f "$f" ]]; then
            log "---- tail -n 30 $f ----"
            tail -n 30 "$f" >&2 || true
        fi
    done
}

cmd_install() {
    need_root
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]} == 0)); then
        log "already installed: ${PACKAGES[*]} (slurm $(dpkg-query -W -f="\${Version}" slurmctld))"
        return 0
    fi
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Refresh the package lists when there are none (fresh container), and once more if the
    # install fails (stale lists point at versions the mirror no longer has).
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        apt-get update -q
    fi
    # Without systemd/an init the package scripts do not start the services (policy-rc.d or
    # no init), which is what we want: `start` runs the daemons itself.
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
        log "apt-get install failed; refreshing package lists and retrying"
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
    log "installed: slurm $(dpkg-query -W -f="\${Version}" slurmctld)"
}

write_config() {
    local node cpus boards sockets cores threads memtotal_mb realmem conf
    node="$(hostname -s)"
    # Hardware layout as slurmd sees it, so the node is not drained for a mismatch.
    local hw
    hw="$(slurmd -C | head -n 1)"
    cpus="$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")"
    boards="$(sed -n 's/.* Boards=\([0-9]*\).*/\1/p' <<<"$hw")"
    sockets="$(sed -n 's/.* SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")"
    cores="$(sed -n 's/.* CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")"
    threads="$(sed -n 's/.* ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")"
    [[ -n "$cpus" && -n "$cores" ]] || die "cannot parse 'slurmd -C': $hw"
    memtotal_mb="$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))"
    realmem="${SLURM_CI_MEM_MB:-$((memtotal_mb * 3 / 4))}"

    [[ "$GPUS" =~ ^[1-4]$ ]] || die "SLURM_CI_GPUS must be 1-4, got '${GPUS}'"

    conf="${CONF_DIR}/slurm.conf"
    if [[ -f "$conf" ]] && ! grep -qF "$MARKER" "$conf"; then
        die "$conf exists and was not written by this script; refusing to overwrite it (set SLURM_CI_CONF_DIR and SLURM_CONF to use another place)"
    fi
    mkdir -p "$CONF_DIR"
    cat >"${conf}.tmp" <<EOF
${MARKER}; rewritten on every start.
ClusterName=lionsweep
SlurmctldHost=${node}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=${DEF_MEM_PER_CPU}
GresTypes=gpu
# No accounting database: jobs stay visible in squeue for MinJobAge seconds after they end,
# which is what the Snakemake SLURM plugin's squeue status command relies on.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
InactiveLimit=0
KillWait=5
Waittime=0
SlurmdTimeout=300
SlurmctldTimeout=120
StateSaveLocation=${SLURM_CI_DIR}/state
SlurmdSpoolDir=${SLURM_CI_DIR}/spool
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldLogFile=${CTLD_LOG}
SlurmdLogFile=${SLURMD_LOG}
SlurmctldDebug=info
SlurmdDebug=info
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} Boards=${boards:-1} SocketsPerBoard=${sockets:-1} CoresPerSocket=${cores} ThreadsPerCore=${threads:-1} RealMemory=${realmem} Gres=gpu:${GPUS} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${node} Default=YES MaxTime=INFINITE State=UP
EOF
    mv "${conf}.tmp" "$conf"
    local i
    {
        echo "${MARKER}; rewritten on every start."
        echo "# Fake GPUs: any existing device file makes a GPU schedulable (CUDA_VISIBLE_DEVICES is set)."
        for ((i = 0; i < GPUS; i++)); do
            echo "NodeName=${node} Name=gpu Count=1 File=${FAKE_GPU_FILES[i]}"
        done
    } >"${CONF_DIR}/gres.conf"
    cp "$conf" "${CONF_DIR}/gres.conf" "${SLURM_CI_DIR}/"
    log "wrote ${conf} (node ${node}: ${cpus} CPUs, ${realmem} MB, gpu:${GPUS}) and ${CONF_DIR}/gres.conf"
}

munge_works() {
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1
}

start_munge() {
    if munge_works; then
        log "munged already answering on ${MUNGE_SOCKET_DIR}"
        return 0
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        install -d -o munge -g munge -m 0700 /etc/munge
        if command -v mungekey >/dev/null; then
            runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
        else
            create-munge-key -f
        fi
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 "$MUNGE_SOCKET_DIR"
    install -d -o munge -g munge -m 0700 "$MUNGE_DIR"
    rm -f "$MUNGE_PID"
    runuser -u munge -- munged --force \
        --pid-file="$MUNGE_PID" \
        --log-file="${MUNGE_DIR}/munged.log" \
        --seed-file="${MUNGE_DIR}/munged.seed"
    wait_pid_file "$MUNGE_PID" munged || {
        show_logs
        die "munged did not start"
    }
    local i
    for ((i = 0; i < 50; i++)); do
        munge_works && break
        sleep 0.1
    done
    munge_works || {
        show_logs
        die "munged started but munge/unmunge fails"
    }
    log "munged started (pid $(live_pid "$MUNGE_PID" munged))"
}

node_state() {
    sinfo -h -N -n "$(hostname -s)" -o '%T' 2>/dev/null | head -n 1 || true
}

cmd_start() {
    need_root
    command -v slurmctld >/dev/null || die "SLURM is not installed; run: bash $0 install"
    local t0=$SECONDS
    mkdir -p "${SLURM_CI_DIR}"/{state,spool,log,run}
    chmod 0755 "$SLURM_CI_DIR" "${SLURM_CI_DIR}"/{state,spool,log,run}
    write_config
    start_munge

    if [[ -n "$(live_pid "$CTLD_PID" slurmctld)" ]]; then
        log "slurmctld already running; reconfiguring"
        scontrol reconfigure >/dev/null 2>&1 || log "scontrol reconfigure failed (continuing)"
    else
        # -c: start from a clean state (no jobs left over from a previous run).
        slurmctld -c || {
            show_logs
            die "slurmctld failed to start"
        }
        wait_pid_file "$CTLD_PID" slurmctld || {
            show_logs
            die "slurmctld exited right after starting"
        }
        log "slurmctld started (pid $(live_pid "$CTLD_PID" slurmctld))"
    fi

    if [[ -n "$(live_pid "$SLURMD_PID" slurmd)" ]]; then
        log "slurmd already running"
    else
        slurmd || {
            show_logs
            die "slurmd failed to start"
        }
        wait_pid_file "$SLURMD_PID" slurmd || {
            show_logs
            die "slurmd exited right after starting"
        }
        log "slurmd started (pid $(live_pid "$SLURMD_PID" slurmd))"
    fi

    local state=""
    while ((SECONDS - t0 < TIMEOUT)); do
        state="$(node_state)"
        case "$state" in
            idle | mixed | allocated | completing)
                log "cluster up in $((SECONDS - t0)) s: node $(hostname -s) is ${state}, partition ${PARTITION}"
                return 0
                ;;
        esac
        sleep 0.5
    done
    show_logs
    sinfo -N -l >&2 || true
    die "node $(hostname -s) not idle after ${TIMEOUT} s (state: '${state:-no answer from slurmctld}')"
}

stop_daemon() {
    local pidfile="$1" comm="$2" pid i
    pid="$(live_pid "$pidfile" "$comm")"
    if [[ -z "$pid" ]]; then
        log "$comm not running"
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$comm (pid $pid) ignored SIGTERM for 15 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile"
    log "$comm (pid $pid) stopped"
}

cmd_stop() {
    need_root
    local i jobs
    if [[ -n "$(live_pid "$CTLD_PID" slurmctld)" ]]; then
        jobs="$(squeue -h -t PENDING,RUNNING,SUSPENDED,CONFIGURING,COMPLETING -o '%i' 2>/dev/null || true)"
        if [[ -n "$jobs" ]]; then
            log "cancelling jobs: $(tr '\n' ' ' <<<"$jobs")"
            # shellcheck disable=SC2086  # one job id per word
            scancel $jobs 2>/dev/null || true
            for ((i = 0; i < 30; i++)); do
                [[ -z "$(squeue -h -t PENDING,RUNNING,SUSPENDED,CONFIGURING,COMPLETING -o '%i' 2>/dev/null || true)" ]] && break
                sleep 0.5
            done
        fi
    fi
    stop_daemon "$SLURMD_PID" slurmd
    stop_daemon "$CTLD_PID" slurmctld
    # Only the munged this script started (its pid file is ours); a system munged is left alone.
    stop_daemon "$MUNGE_PID" munged
}

cmd_status() {
    local ok=0
    printf 'slurmctld: %s\n' "$(live_pid "$CTLD_PID" slurmctld || true)"
    printf 'slurmd:    %s\n' "$(live_pid "$SLURMD_PID" slurmd || true)"
    printf 'munged:    %s\n' "$(live_pid "$MUNGE_PID" munged || true)"
    if command -v sinfo >/dev/null && sinfo; then
        squeue -a -t all || true
    else
        ok=1
    fi
    return "$ok"
}

main() {
    case "${1:-}" in
        install) cmd_install ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        *)
            echo "usage: $0 {install|start|stop|status}" >&2
            exit 2
            ;;
    esac
}

main "$@"
