#!/usr/bin/env bash
# Benchmark: hcconv against the `openssl enc -d | tar xz` baseline on generated exports.
#
#   scripts/bench.sh [SIZES...]        e.g. scripts/bench.sh 50000 500000 5000000
#
# For each size: generates an encrypted export with the repo's generator (1 message in
# 100 with a 20 kB attachment, 10 % private), then alternates baseline and hcconv runs
# (REPEAT times, default 5) for each target, all writing to /dev/shm, and prints the
# best and the spread of wall time, the ratio to the baseline's best, messages per
# second, output bytes per second and peak RSS (from /usr/bin/time -v). Environment:
# REPEAT, TARGETS, WORK, SHAPE and ROOMS. SHAPE=default (the above) or text-heavy
# (texts of 40-400 characters, UUID ids, newest-first histories, 800 users, rooms
# of 200 members who all post, a 10 B-3 kB file on 1 message in 25, 13 % private
# messages stored in both participants' histories, users.json and rooms.json last:
# the shape independent exports were found to have), or integration-heavy (text-heavy,
# with 35 % of room messages integration notifications in every form HIPCHAT.md lists:
# HTML and plain text, with and without cards, from id-0 senders and named integrations;
# private messages over as many distinct pairs as 800 users allow; one room message in
# 300 of 4-6 k characters; one attachment in 20 missing: the shape of issue 23's export).
# ROOMS: default one room per 1000 messages (1500 for text-heavy and integration-heavy),
# at least 10; set a fixed number, e.g. ROOMS=500, to compare sizes with
# the same per-room state. For Pixtoome, whose output is several times the
# baseline's bytes, the bytes/s column is the one to compare. DRAIN=1 deletes
# Pixtoome's finished message files while it runs (all but the newest three, their
# bytes still counted), for outputs larger than the memory-backed WORK folder can
# hold (text-heavy 5M writes about 63 GB); deleting costs the run some CPU, so it
# is only slower for it.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-50000}")
repeat=${REPEAT:-5}
# A target is `--to` value, or `pixtoome:POLICY` for a --pixtoome-usermessages policy
# (`pixtoome:idle` writes the rows a full-history target would without the
# messages × subscribers usermessage rows; see docs/pixtoome.md).
targets=(${TARGETS:-mattermost pixtoome pixtoome:idle qiscus})
work=${WORK:-/dev/shm/hcconv-bench}
shape=${SHAPE:-default}
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

# With DRAIN=1, runs in the background while a Pixtoome run writes into a hidden
# folder in $work: deletes each finished messages-NNNNNN.json (all but the three
# newest) and writes the bytes deleted to $1 once $work/drain.stop appears.
drain() {
  local total=0 files f size d
  while [ ! -e "$work/drain.stop" ]; do
    for d in "$work"/.*hcconv-partial-*; do
      [ -d "$d" ] || continue
      mapfile -t files < <(cd "$d" 2>/dev/null && ls | grep '^messages-' | sort | head -n -3 | sed "s|^|$d/|")
      # Counted only once removed here: the run may have moved the folder since.
      for f in "${files[@]}"; do
        size=$(stat -c %s "$f" 2>/dev/null) && rm "$f" 2>/dev/null && total=$((total + size)) || true
      done
    done
    sleep 0.05
  done
  echo "$total" > "$1"
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

printf '%-10s %-13s %9s %9s %7s %12s %11s %9s\n' messages side best_s worst_s ratio msgs_per_s MB_per_s rss_MiB
for n in "${sizes[@]}"; do
  per_room=$([ "$shape" = default ] && echo 1000 || echo 1500)
  rooms=${ROOMS:-$(( n / per_room > 10 ? n / per_room : 10 ))}
  export_file="$work/export-$shape-$n-r$rooms.tar.gz.aes"
  if [ ! -f "$export_file" ]; then
    case "$shape" in
      text-heavy) "$gen" scale --shape text-heavy --messages "$n" --rooms "$rooms" --users 800 --attachment-every 25 --private-percent 13 --password "bench password" -o "$export_file" ;;
      integration-heavy) "$gen" scale --shape integration-heavy --messages "$n" --rooms "$rooms" --users 800 --attachment-every 25 --private-percent 13 --password "bench password" -o "$export_file" ;;
      default) "$gen" scale --messages "$n" --rooms "$rooms" --users 500 --password "bench password" -o "$export_file" ;;
      *) echo "SHAPE is default, text-heavy or integration-heavy" >&2; exit 2 ;;
    esac
  fi
  declare -A bytes=()
  declare -A walls=() rsss=()
  for ((i = 0; i < repeat; i++)); do
    rm -rf "$work/base" && mkdir -p "$work/base"
    read -r w r < <(measure bash -c "openssl enc -d -aes-256-cbc -md md5 -pass file:'$pw' -in '$export_file' | tar xz -C '$work/base'")
    bytes[baseline]=$(du -sb "$work/base" | cut -f1)
    rm -rf "$work/base"
    walls[baseline]+="$w "; rsss[baseline]=$r
    for t in "${targets[@]}"; do
      rm -rf "$work/out-$t" "$work/drain.stop" "$work/drained"
      drained=0
      [ "${DRAIN:-0}" = 1 ] && [ "$t" = pixtoome ] && { drain "$work/drained" & }
      read -r w r < <(measure "$bin" "$export_file" -o "$work/out-$t" --password-file "$pw" --quiet $(target_flags "$t"))
      if [ "${DRAIN:-0}" = 1 ] && [ "$t" = pixtoome ]; then
        touch "$work/drain.stop"; wait; drained=$(cat "$work/drained")
      fi
      bytes[$t]=$(( $(du -sb "$work/out-$t" | cut -f1) + drained ))
      # Outputs live in memory (/dev/shm): keep none beside the next run (Pixtoome
      # writes 8.6 GB at 5M), so every run starts with the same free memory.
      rm -rf "$work/out-$t"
      walls[$t]+="$w "; rsss[$t]="${rsss[$t]:-0}"; [ "$r" -gt "${rsss[$t]}" ] && rsss[$t]=$r
    done
  done
  read -r base_best base_worst < <(stats ${walls[baseline]})
  mbps() { awk -v b="$1" -v t="$2" 'BEGIN{printf "%.0f", b/t/1e6}'; }
  printf '%-10s %-13s %9s %9s %7s %12s %11s %9s\n' "$n" baseline "$base_best" "$base_worst" 1.00 "$(awk -v n="$n" -v t="$base_best" 'BEGIN{printf "%d", n/t}')" "$(mbps "${bytes[baseline]}" "$base_best")" "$(( rsss[baseline] / 1024 ))"
  for t in "${targets[@]}"; do
    read -r best worst < <(stats ${walls[$t]})
    printf '%-10s %-13s %9s %9s %7s %12s %11s %9s\n' "$n" "$t" "$best" "$worst" "$(awk -v a="$best" -v b="$base_best" 'BEGIN{printf "%.2f", a/b}')" "$(awk -v n="$n" -v t="$best" 'BEGIN{printf "%d", n/t}')" "$(mbps "${bytes[$t]}" "$best")" "$(( rsss[$t] / 1024 ))"
  done
  rm -rf "$work/base" "$work"/out-* "$work/drain.stop" "$work/drained"
done
