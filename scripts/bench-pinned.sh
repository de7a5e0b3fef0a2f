#!/usr/bin/env bash
# The issue-15 method for REST batch 1: `ferry serve` and the bare net/http
# handler (bench/bare) each pinned to CPU 0, wrk (1 thread, 16 connections)
# pinned to CPU 1, V1 and V2 predict of bench/model, alternating bare and
# ferry so both see the same background load. Prints rps, p99 and server
# CPU per request per run, then ferry/bare rps per round, then latency at
# half of Ferry's median max rps for both servers, rounds alternating bare
# and ferry: bench/loadgen pinned to CPU 1, open loop (16 connections, the
# rate spread evenly, latency from each request's intended send), 2 s of
# warm-up left out.
#
#   scripts/bench-pinned.sh [rounds]      (default 3; 8 s per run)
#
# Needs wrk and taskset, two CPUs, loopback ports 19080-19083. Stops only the
# two servers it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
DUR=${BENCH_PINNED_DURATION:-8s}
OUT=$(mktemp -d /tmp/ferry-pinned.XXXXXX)
go build -o "$OUT/ferry" ./cmd/ferry
go build -o "$OUT/bare" ./bench/bare
go build -o "$OUT/loadgen" ./bench/loadgen
for v in v1 v2; do
	# A Lua long string whose brackets cannot occur in the JSON body.
	printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[%s]==]\n' \
		"$(cat "bench/payloads/$v-b1.json")" >"$OUT/$v.lua"
done
taskset -c 0 "$OUT/ferry" serve --model-dir bench/model --model-name bench --host 127.0.0.1 \
	--http-port 19080 --grpc-port 19081 --log-level warn >"$OUT/ferry.log" 2>&1 &
fp=$!
taskset -c 0 "$OUT/bare" --http-port 19082 --grpc-port 19083 >"$OUT/bare.log" 2>&1 &
bp=$!
trap 'kill $fp $bp 2>/dev/null || true' EXIT
for _ in $(seq 50); do
	curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' --data @bench/payloads/v1-b1.json \
		127.0.0.1:19080/v1/models/bench:predict && curl -sf -o /dev/null 127.0.0.1:19082/v2/health/ready && break
	sleep 0.2
done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user+system clock ticks
ticks() { awk '/^cpu / {print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; } # steal, all
declare -A rps half
for round in $(seq "$ROUNDS"); do
	for proto in v1 v2; do
		path=/v1/models/bench:predict
		[[ $proto == v2 ]] && path=/v2/models/bench/infer
		for srv in bare ferry; do
			port=19082 pid=$bp
			[[ $srv == ferry ]] && port=19080 pid=$fp
			c0=$(cpu "$pid")
			out=$(taskset -c 1 wrk -t1 -c16 -d"$DUR" --latency -s "$OUT/$proto.lua" "http://127.0.0.1:$port$path")
			c1=$(cpu "$pid")
			r=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
			n=$(awk '/requests in/ {print $1}' <<<"$out")
			bad=$(awk '/Non-2xx/ {print $5}' <<<"$out")
			rps[$round.$proto.$srv]=$r
			printf 'round %s %s %-5s rps=%s p99=%s cpu/req=%s us non-2xx=%s\n' "$round" "$proto" "$srv" "$r" \
				"$(awk '/ 99%/ {print $2}' <<<"$out")" \
				"$(awk -v c=$((c1 - c0)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", c * 1e6 / hz / n}')" "${bad:-0}"
			[[ -z ${bad:-} ]] || { echo "non-2xx answers: see $OUT" >&2; exit 1; }
		done
	done
done
for round in $(seq "$ROUNDS"); do
	for proto in v1 v2; do
		awk -v f="${rps[$round.$proto.ferry]}" -v b="${rps[$round.$proto.bare]}" -v p="$proto" -v r="$round" \
			'BEGIN {printf "round %s %s ferry/bare rps %.2f\n", r, p, f / b}'
	done
done
# The issue's latency target: p99 at half of Ferry's max rps (the median of
# its rounds above). loadgen exits non-zero on any failed or non-2xx request.
for proto in v1 v2; do
	half[$proto]=$(for round in $(seq "$ROUNDS"); do echo "${rps[$round.$proto.ferry]}"; done | sort -n |
		awk '{a[NR] = $1} END {m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%d", m / 2}')
done
for round in $(seq "$ROUNDS"); do
	for proto in v1 v2; do
		path=/v1/models/bench:predict
		[[ $proto == v2 ]] && path=/v2/models/bench/infer
		for srv in bare ferry; do
			port=19082
			[[ $srv == ferry ]] && port=19080
			read -r s0 t0 < <(ticks)
			out=$(taskset -c 1 "$OUT/loadgen" -url "http://127.0.0.1:$port$path" -rate "${half[$proto]}" -c 16 \
				-d "$DUR" -warmup 2s -H 'Content-Type: application/json' -body "bench/payloads/$proto-b1.json") ||
				{ printf '%s\n' "$out" >&2; exit 1; }
			read -r s1 t1 < <(ticks)
			# "latency p50 A p90 B p99 C p99.9 D max E ms"; steal: the hypervisor's share of both CPUs
			printf 'half load round %s %s %-5s target=%s rps got=%s p50=%s p99=%s p99.9=%s max=%s ms send-lag p99=%s ms steal=%s%%\n' \
				"$round" "$proto" "$srv" "${half[$proto]}" "$(awk '/^requests/ {printf "%d", $7}' <<<"$out")" \
				$(awk '/^latency/ {print $3, $7, $9, $11}' <<<"$out") "$(awk '/^send-lag/ {print $7}' <<<"$out")" \
				"$(awk -v s=$((s1 - s0)) -v t=$((t1 - t0)) 'BEGIN {printf "%.1f", 100 * s / t}')"
		done
	done
done
