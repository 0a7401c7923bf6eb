# http_lib.sh - helpers for the HTTP integration tests (sourced; not a test itself).
# Usage: source http_lib.sh BUILD_DIR SOURCE_DIR. Every process a test starts is
# recorded by PID and stopped by PID on exit.
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
VIGIL="$BUILD/vigil"
TMP=$(mktemp -d /tmp/vigil-http.XXXXXX)
PIDS=()
FAILS=0
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# run_model PORT SEED DESCRIPTION [ARGS...] : runs the model script $MODEL_PY (set by the
# test, in tests/integration/) against the server at PORT with the token adm-secret,
# --seed SEED and ARGS (expect_cmd: ok, or bad with its output)
run_model() {
    local port=$1 seed=$2 desc=$3
    shift 3
    expect_cmd "$desc" python3 "$SRC/tests/integration/$MODEL_PY" 127.0.0.1 "$port" adm-secret \
        --seed "$seed" "$@"
}

# have_ipv6 : 0 when this machine has an IPv6 loopback (::1) to bind to
have_ipv6() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null
}

# redis_up : starts a redis-server on a free loopback port (no persistence), waits for
# it, sets RPORT; 1 when redis-server is missing or did not answer.
redis_up() {
    command -v redis-server >/dev/null || return 1
    RPORT=$(free_port)
    redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
        >"$TMP/redis-$RPORT.log" 2>&1 &
    PIDS+=("$!")
    for _ in $(seq 1 100); do redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.05; done
    return 1
}

# start_vigil NAME PORT ARGS... : starts `vigil serve`, waits for /readyz.
start_vigil() {
    local name=$1 port=$2
    shift 2
    "$VIGIL" serve --http "127.0.0.1:$port" "$@" >"$TMP/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    eval "PID_$name=$pid"
    for _ in $(seq 1 300); do
        if curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" 2>/dev/null | grep -q 200; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "vigil $name exited:"; cat "$TMP/$name.log"; exit 1
        fi
        sleep 0.1
    done
    echo "vigil $name not ready"; cat "$TMP/$name.log"; exit 1
}

# stop_pid PID : SIGTERM and wait; sets STOP_STATUS to the exit status.
stop_pid() {
    kill -TERM "$1"
    STOP_STATUS=0
    wait "$1" || STOP_STATUS=$?
}

# req METHOD URL TOKEN [BODY|@FILE] [curl args...] : sets STATUS, BODY, HEADERS.
req() {
    local method=$1 url=$2 token=$3
    shift 3
    local args=(-s -X "$method" -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}')
    if [ -n "$token" ]; then args+=(-H "Authorization: Bearer $token"); fi
    if [ $# -gt 0 ]; then
        local b=$1
        shift
        if [ "${b:0:1}" = "@" ]; then args+=(--data-binary "$b"); else args+=(--data-binary "$b"); fi
    fi
    STATUS=$(curl "${args[@]}" "$@" "$url")
    BODY=$(cat "$TMP/body")
    HEADERS=$(cat "$TMP/headers")
}

# expect_cmd DESCRIPTION CMD... : ok when CMD exits 0, else a failure.
expect_cmd() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else bad "$desc"; fi
}

# stop_clean PID DESCRIPTION : stops PID (SIGTERM, waited for); a failure unless it exits 0.
stop_clean() {
    stop_pid "$1"
    [ "$STOP_STATUS" = 0 ] && ok "$2" || bad "$2: stop status $STOP_STATUS"
}

ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }

# expect STATUS [JSON-CHECK (python expression over j)] DESCRIPTION
expect() {
    local want=$1 check=$2 desc=$3
    if [ "$STATUS" != "$want" ]; then
        bad "$desc: status $STATUS, want $want: $BODY"
        return
    fi
    if [ -n "$check" ]; then
        if ! BODY="$BODY" python3 -c "
import json, os, sys
j = json.loads(os.environ['BODY'])
sys.exit(0 if ($check) else 1)" 2>"$TMP/pyerr"; then
            bad "$desc: check '$check' failed on: ${BODY:0:400} $(cat "$TMP/pyerr" | tail -1)"
            return
        fi
    fi
    ok "$desc"
}

# expect_error STATUS CODE DESCRIPTION : the JSON error shape of SPEC section 6
expect_error() {
    expect "$1" "set(j) == {'error'} and j['error']['code'] == '$2' and isinstance(j['error']['message'], str)" "$3"
}

header() { echo "$HEADERS" | tr -d '\r' | grep -i "^$1:" | head -1 | cut -d' ' -f2-; }

finish() {
    if [ "$FAILS" -ne 0 ]; then
        echo "$FAILS check(s) failed"
        for f in "$TMP"/*.log; do echo "== $f"; tail -20 "$f"; done
        exit 1
    fi
    echo "all checks passed"
}

# raw_send PORT HEAD BODY STEP... : one raw connection to 127.0.0.1:PORT: sends HEAD (the
# request line and headers; \r\n written as such, Content-Length: added when HEAD has
# none and BODY is not "-") and then BODY in the pieces the STEPs say: N (the next N
# bytes), sS (sleep S seconds), rest (what is left). Stops early when the server answers
# or closes. Sets STATUS (000: closed without an answer, ---: still open when the steps
# ended), BODY (the answer's body) and ELAPSED (seconds from the first byte sent until
# the answer or the close, else until the steps ended).
raw_send() {
    local port=$1 head=$2 body=$3
    shift 3
    python3 - "$port" "$head" "$body" "$TMP/raw" "$@" <<'PY'
import select, socket, sys, time
port, head, body, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
steps = sys.argv[5:]
head = head.replace("\\r\\n", "\r\n").encode()
body = b"" if body == "-" else body.encode()
if b"content-length:" not in head.lower() and sys.argv[3] != "-":
    head += b"Content-Length: %d\r\n" % len(body)
s = socket.create_connection(("127.0.0.1", port))
t0 = time.time()
s.sendall(head + b"\r\n")
got, closed, pos = b"", False, 0

def poll(wait):
    global got, closed
    end = time.time() + wait
    while not closed:
        left = end - time.time()
        r, _, _ = select.select([s], [], [], max(left, 0))
        if not r:
            return
        try:
            d = s.recv(65536)
        except OSError:
            d = b""
        if not d:
            closed = True
        got += d

for st in steps:
    if got or closed:
        break
    if st.startswith("s"):
        poll(float(st[1:]))
        continue
    n = len(body) - pos if st == "rest" else int(st)
    try:
        s.sendall(body[pos:pos + n])
    except OSError:
        closed = True
    pos += n
    poll(0)
if not got and not closed:
    if pos >= len(body):
        poll(5)   # the whole body is sent: wait for the answer
t = time.time() - t0
if got:
    while not closed and b"\r\n\r\n" in got:
        hdr, _, rest = got.partition(b"\r\n\r\n")
        cl = [l for l in hdr.split(b"\r\n") if l.lower().startswith(b"content-length:")]
        if not cl or len(rest) >= int(cl[0].split(b":")[1]):
            break
        poll(2)
    status = got.split(b" ", 2)[1].decode()
    answer = got.partition(b"\r\n\r\n")[2]
else:
    status, answer = ("000" if closed else "---"), b""
open(out + ".status", "w").write("%s %.2f" % (status, t))
open(out + ".body", "wb").write(answer)
PY
    read -r STATUS ELAPSED <"$TMP/raw.status"
    BODY=$(cat "$TMP/raw.body")
}
