#!/usr/bin/env bash
# Soak test, run by hand: `scripts/soak.sh MINUTES [OUT_DIR]`.
#
# One live session for MINUTES: the synthetic 30 fps source, RVM with OFD, a looping background video,
# recording split into takes every 2 minutes, and the virtual camera on (a raw pipe that a reader drains,
# so the camera works on any machine). Every 10 s it samples the process's RSS, threads, open file
# descriptors and child processes; at the end it checks every take with ffprobe and prints the figures:
# RSS drift, frames lost (dropped by the recorder's queue), and fds, threads and children at the end
# against the start.
#
# Uses the release build (`cargo build --release`), which it builds if needed, or the binary MATTECAM_BIN
# names.
set -euo pipefail

MINUTES=${1:?usage: scripts/soak.sh MINUTES [OUT_DIR]}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${2:-$(mktemp -d /tmp/mattecam-soak.XXXXXX)}
mkdir -p "$OUT"
BIN=${MATTECAM_BIN:-}
SIZE=${SOAK_SIZE:-640x360}
SPLIT_S=${SOAK_SPLIT_S:-120}

if [ -z "$BIN" ]; then
    (cd "$ROOT" && cargo build --release --quiet)
    BIN="$ROOT/target/release/mattecam"
fi

# The background video: 10 s of ffmpeg's test pattern, looped by mattecam.
BACKGROUND="$OUT/background.mp4"
ffmpeg -v error -y -f lavfi -i "testsrc2=s=$SIZE:r=30:d=10" -c:v libx264 -pix_fmt yuv420p "$BACKGROUND"

# The virtual camera's reader: drains the raw pipe as a video call would read the camera.
FIFO="$OUT/camera.fifo"
rm -f "$FIFO"
mkfifo "$FIFO"
cat "$FIFO" > /dev/null &
READER=$!

SECONDS_TOTAL=$((MINUTES * 60))
"$BIN" record --source "synthetic:$SIZE@30" --model rvm --temporal ofd --compositor cpu \
    --background "video:$BACKGROUND" --seconds "$SECONDS_TOTAL" --split-s "$SPLIT_S" \
    --virtual-camera "raw:$FIFO" -o "$OUT/take.mp4" > "$OUT/record.out" 2> "$OUT/record.err" &
PID=$!

SAMPLES="$OUT/samples.tsv"
printf 'elapsed_s\trss_kib\tthreads\tfds\tchildren\n' > "$SAMPLES"
sample() {
    local rss threads fds children
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status" 2>/dev/null) || return 1
    threads=$(ls "/proc/$PID/task" 2>/dev/null | wc -l)
    fds=$(ls "/proc/$PID/fd" 2>/dev/null | wc -l)
    children=$(pgrep -P "$PID" | wc -l)
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$rss" "$threads" "$fds" "$children" >> "$SAMPLES"
}
START=$(date +%s)
while kill -0 "$PID" 2>/dev/null; do
    sample $(( $(date +%s) - START )) || true
    for _ in $(seq 10); do kill -0 "$PID" 2>/dev/null && sleep 1; done
done
STATUS=0
wait "$PID" || STATUS=$?
kill "$READER" 2>/dev/null || true
wait "$READER" 2>/dev/null || true

echo "soak: $MINUTES min, exit status $STATUS, files in $OUT"
# The start is the first sample once the session runs (10 s in: the model loaded, the first take open).
awk -F'\t' 'NR == 1 { next }
    { n++; rss[n] = $2; t[n] = $1; th[n] = $3; fd[n] = $4; ch[n] = $5; if ($2 > max) max = $2
      if (n == 1 || $3 > thmax) thmax = $3; if (n == 1 || $4 > fdmax) fdmax = $4 }
    END {
        if (n < 2) { print "soak: too few samples"; exit 1 }
        s = 1; while (s < n && t[s] < 10) s++;
        printf "RSS: %.1f MiB at %d s, %.1f MiB at the end (%d s), max %.1f MiB; drift %+.1f MiB\n",
            rss[s] / 1024, t[s], rss[n] / 1024, t[n], max / 1024, (rss[n] - rss[s]) / 1024
        printf "threads %d -> %d (most %d), open fds %d -> %d (most %d), children %d -> %d, from %d s to the end\n",
            th[s], th[n], thmax, fd[s], fd[n], fdmax, ch[s], ch[n], t[s]
    }' "$SAMPLES"

TAKES=0; BAD=0; FRAMES=0
for take in "$OUT"/take-*.mp4; do
    [ -e "$take" ] || continue
    TAKES=$((TAKES + 1))
    frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$take" || echo 0)
    if [ -z "$frames" ] || [ "$frames" -eq 0 ]; then BAD=$((BAD + 1)); fi
    FRAMES=$((FRAMES + ${frames:-0}))
done
DROPPED=$(cat "$OUT"/take-*.json 2>/dev/null | awk -F': ' '/"frames_dropped"/ { gsub(/,/, "", $2); s += $2 } END { print s + 0 }')
INCOMPLETE=$(cat "$OUT"/take-*.json 2>/dev/null | grep -c '"complete": false' || true)
echo "takes: $TAKES checked by ffprobe ($BAD unreadable, $INCOMPLETE incomplete), $FRAMES frames; frames lost (dropped by the recorder's queue): $DROPPED"
tail -n 1 "$OUT/record.err"
[ "$STATUS" -eq 0 ] && [ "$BAD" -eq 0 ]
