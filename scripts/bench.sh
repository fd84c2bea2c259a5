#!/usr/bin/env bash
# Benchmark: hcconv against the `openssl enc -d | tar xz` baseline on generated exports.
#
#   scripts/bench.sh [SIZES...]        e.g. scripts/bench.sh 50000 500000 5000000
#
# For each size: generates an encrypted export with the repo's generator (1 message in
# 100 with a 20 kB attachment, 10 % private), then alternates baseline and hcconv runs
# (REPEAT times, default 5) for each target, all writing to /dev/shm, and prints the
# best and the spread of wall time, the ratio to the baseline's best, messages per
# second and peak RSS (from /usr/bin/time -v). Environment: REPEAT, TARGETS, WORK, and
# ROOMS (default: one room per 1000 messages, at least 10; set a fixed number, e.g.
# ROOMS=500, to compare sizes with the same per-room state).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-50000}")
repeat=${REPEAT:-5}
# A target is `--to` value, or `pixtoome:POLICY` for a --pixtoome-usermessages policy
# (`pixtoome:idle` writes the rows a full-history target would without the
# messages × subscribers usermessage rows; see docs/pixtoome.md).
targets=(${TARGETS:-mattermost pixtoome pixtoome:idle qiscus})
work=${WORK:-/dev/shm/hcconv-bench}
command -v openssl >/dev/null || { echo "openssl is needed for the baseline" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (apt-get install time)" >&2; exit 1; }

cargo build --release --quiet --example gen_fixture
cargo build --release --quiet
bin=target/release/hcconv
gen=target/release/examples/gen_fixture
mkdir -p "$work"
pw="$work/password"
printf 'bench password\n' > "$pw"
secret="$work/qiscus.secret"
printf 'a benchmark secret of 32 bytes!!\n' > "$secret"

# The flags of a target besides the common ones, `--to` included.
target_flags() {
  case "$1" in
    qiscus) echo "--to qiscus --secret-file $secret --files-base-url https://files.example.com/hc" ;;
    pixtoome:*) echo "--to pixtoome --pixtoome-usermessages ${1#pixtoome:}" ;;
    *) echo "--to $1" ;;
  esac
}

# Runs a command under /usr/bin/time; prints "wall_seconds max_rss_kib". Wall time
# is taken with nanosecond clock reads around it (time -v prints hundredths, too
# coarse for the 50k runs); the few milliseconds /usr/bin/time itself adds count
# on both sides alike.
measure() {
  local log="$work/time.log" start end rss
  start=$(date +%s%N)
  /usr/bin/time -v -o "$log" "$@" >/dev/null 2>"$work/stderr.log" || { cat "$work/stderr.log" >&2; return 1; }
  end=$(date +%s%N)
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  echo "$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.3f", (b-a)/1e9}') $rss"
}

stats() { # best min, max of a list of numbers
  printf '%s\n' "$@" | sort -g | awk 'NR==1{min=$1} {max=$1} END{printf "%.3f %.3f\n", min, max}'
}

printf '%-10s %-13s %9s %9s %7s %12s %9s\n' messages side best_s worst_s ratio msgs_per_s rss_MiB
for n in "${sizes[@]}"; do
  rooms=${ROOMS:-$(( n / 1000 > 10 ? n / 1000 : 10 ))}
  export_file="$work/export-$n-r$rooms.tar.gz.aes"
  if [ ! -f "$export_file" ]; then
    "$gen" scale --messages "$n" --rooms "$rooms" --users 500 --password "bench password" -o "$export_file"
  fi
  declare -A walls=() rsss=()
  for ((i = 0; i < repeat; i++)); do
    rm -rf "$work/base" && mkdir -p "$work/base"
    read -r w r < <(measure bash -c "openssl enc -d -aes-256-cbc -md md5 -pass file:'$pw' -in '$export_file' | tar xz -C '$work/base'")
    rm -rf "$work/base"
    walls[baseline]+="$w "; rsss[baseline]=$r
    for t in "${targets[@]}"; do
      rm -rf "$work/out-$t"
      read -r w r < <(measure "$bin" "$export_file" -o "$work/out-$t" --password-file "$pw" --quiet $(target_flags "$t"))
      # Outputs live in memory (/dev/shm): keep none beside the next run (Pixtoome
      # writes 8.6 GB at 5M), so every run starts with the same free memory.
      rm -rf "$work/out-$t"
      walls[$t]+="$w "; rsss[$t]="${rsss[$t]:-0}"; [ "$r" -gt "${rsss[$t]}" ] && rsss[$t]=$r
    done
  done
  read -r base_best base_worst < <(stats ${walls[baseline]})
  printf '%-10s %-13s %9s %9s %7s %12s %9s\n' "$n" baseline "$base_best" "$base_worst" 1.00 "$(awk -v n="$n" -v t="$base_best" 'BEGIN{printf "%d", n/t}')" "$(( rsss[baseline] / 1024 ))"
  for t in "${targets[@]}"; do
    read -r best worst < <(stats ${walls[$t]})
    printf '%-10s %-13s %9s %9s %7s %12s %9s\n' "$n" "$t" "$best" "$worst" "$(awk -v a="$best" -v b="$base_best" 'BEGIN{printf "%.2f", a/b}')" "$(awk -v n="$n" -v t="$best" 'BEGIN{printf "%d", n/t}')" "$(( rsss[$t] / 1024 ))"
  done
  rm -rf "$work/base" "$work"/out-*
done
