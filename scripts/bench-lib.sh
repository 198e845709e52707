# Shared helpers for scripts/bench-compare and scripts/bench-scaling. Source it; do not run it.
#
# A broker is started from a command template in which {port}, {config} (a generated Mosquitto-style config
# file: listener, allow_anonymous, persistence false, and set_tcp_nodelay for latency runs), {shards} and
# {cpus} are substituted. It runs pinned with taskset, and every broker started here is stopped by PID on exit.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_WORK="${BENCH_WORK:-$(mktemp -d /tmp/shoal-bench.XXXXXX)}"
BENCH_PIDS=()

bench_log() { echo "bench: $*" >&2; }

# Stops every broker this script started (TERM, then KILL after 3 s), by PID only.
bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${BENCH_PIDS[@]}"; do
        local tries=0
        while kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 30 ]; do sleep 0.1; tries=$((tries + 1)); done
        kill -KILL "$pid" 2>/dev/null || true
    done
    BENCH_PIDS=()
}

# Builds shoal-bench (release) unless SHOAL_BENCH points at a binary already.
bench_build_generator() {
    if [ -n "${SHOAL_BENCH:-}" ]; then return; fi
    local scratch="${BENCH_SCRATCH:-/tmp/build-bench}"
    bench_log "building shoal-bench (release, scratch $scratch)"
    swift build -c release --scratch-path "$scratch" --product shoal-bench >&2
    SHOAL_BENCH="$scratch/release/shoal-bench"
}

# Picks a free TCP port on 127.0.0.1.
bench_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Writes a Mosquitto config for PORT; NODELAY=1 adds set_tcp_nodelay. Prints its path.
bench_write_config() {
    local port="$1" nodelay="$2" path="$BENCH_WORK/broker-$1.conf"
    {
        echo "listener $port 127.0.0.1"
        echo "allow_anonymous true"
        echo "persistence false"
        if [ "$nodelay" = 1 ]; then echo "set_tcp_nodelay true"; fi
    } >"$path"
    echo "$path"
}

# Starts a broker: bench_start_broker NAME TEMPLATE CPUS SHARDS NODELAY. Sets BROKER_PID and BROKER_PORT.
# Fails (status 1, clear message, log tail) if it exits or does not accept connections within 10 s.
bench_start_broker() {
    local name="$1" template="$2" cpus="$3" shards="$4" nodelay="$5"
    BROKER_PORT="$(bench_free_port)"
    local config command log
    config="$(bench_write_config "$BROKER_PORT" "$nodelay")"
    command="${template//\{port\}/$BROKER_PORT}"
    command="${command//\{config\}/$config}"
    command="${command//\{shards\}/$shards}"
    command="${command//\{cpus\}/$cpus}"
    log="$BENCH_WORK/$name-$BROKER_PORT.log"
    taskset -c "$cpus" bash -c "exec $command" >"$log" 2>&1 &
    BROKER_PID=$!
    BENCH_PIDS+=("$BROKER_PID")
    local tries=0
    while [ "$tries" -lt 100 ]; do
        if ! kill -0 "$BROKER_PID" 2>/dev/null; then
            wait "$BROKER_PID" 2>/dev/null
            local status=$?
            bench_log "broker '$name' failed to start: '$command' exited with status $status; its log:"
            tail -n 15 "$log" | sed 's/^/    /' >&2
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
        tries=$((tries + 1))
    done
    bench_log "broker '$name' ('$command') does not accept connections on 127.0.0.1:$BROKER_PORT after 10 s; its log:"
    tail -n 15 "$log" | sed 's/^/    /' >&2
    bench_stop_broker
    return 1
}

# Stops the broker started last.
bench_stop_broker() {
    if [ -n "${BROKER_PID:-}" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        local tries=0
        while kill -0 "$BROKER_PID" 2>/dev/null && [ "$tries" -lt 30 ]; do sleep 0.1; tries=$((tries + 1)); done
        kill -KILL "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    BROKER_PID=""
}

# Runs the generator against the broker started last: bench_run_generator CPUS JSON_OUT ARGS...
# Appends its JSON line to JSON_OUT; its table goes to stderr. Bounded by `timeout` as well as its own switch.
bench_run_generator() {
    local cpus="$1" out="$2"
    shift 2
    local limit=$((${BENCH_WARMUP%.*} + ${BENCH_DURATION%.*} + 45))
    local output status
    set +e
    output="$(timeout --kill-after=5 "$limit" taskset -c "$cpus" "$SHOAL_BENCH" --host 127.0.0.1 --port "$BROKER_PORT" \
        --broker-pid "$BROKER_PID" --warmup "$BENCH_WARMUP" --duration "$BENCH_DURATION" --json --quiet "$@")"
    status=$?
    set -e
    echo "$output" | grep -v '^{' | sed 's/^/    /' >&2
    local line
    line="$(echo "$output" | grep '^{' | tail -n 1)"
    if [ -n "$line" ]; then echo "$line" >>"$out"; fi
    if [ "$status" -ne 0 ]; then bench_log "shoal-bench exited with status $status"; fi
    return 0
}

# CPU list helpers: "0-3" style ranges from first..last.
bench_cpu_range() {
    if [ "$1" -eq "$2" ]; then echo "$1"; else echo "$1-$2"; fi
}
