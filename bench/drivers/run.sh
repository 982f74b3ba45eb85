#!/usr/bin/env bash
# Runs every driver on /dev/shm (tmpfs, CPU-bound) and /tmp (disk) and prints
# one markdown table per directory, median of RUNS runs with min–max.
#
#   ./run.sh                       # everything: build times + 3 runs
#   RUNS=5 ./run.sh                # more runs
#   SKIP_BUILD_TIMES=1 ./run.sh    # skip the cold-build timing (~5 min)
#   SKIP_VARIANTS=1 ./run.sh       # skip the capture-variant runs (~4 min)
#   DIRS="/dev/shm" ROWS=20000 ./run.sh
#   DRIVERS="mattn;ncruces -api=direct" RUNS=7 ./run.sh   # paired A/B of two drivers
#
# Runs are interleaved (run 1 of every driver, then run 2, ...) so that noise
# from the VM spreads over all drivers. The raw RESULT lines are kept in
# $OUT/results.tsv.
set -euo pipefail
cd "$(dirname "$0")"

RUNS=${RUNS:-3}
ROWS=${ROWS:-100000}
DIRS=${DIRS:-/dev/shm /tmp}
OUT=${OUT:-$(mktemp -d /tmp/patina-bench-drivers.XXXXXX)}
BIN=$OUT/bin
mkdir -p "$BIN"
RES=$OUT/results.tsv
: >"$RES"

# name|package|binary
TARGETS="mattn|./cmd/mattn|mattn
modernc|./cmd/modernc|modernc
ncruces|./cmd/ncruces|ncruces"

if [[ -z "${SKIP_BUILD_TIMES:-}" ]]; then
	# Never clean the shared cache: each build gets its own GOCACHE.
	echo "timing cold builds (own GOCACHE under $OUT) ..." >&2
	GOCACHE=$OUT/gocache-std go build std
	TIMEFORMAT='%R %U %S'
	while IFS='|' read -r name pkg bin; do
		rm -rf "$OUT/gocache-$name-cold" "$OUT/gocache-$name-std"
		cp -a "$OUT/gocache-std" "$OUT/gocache-$name-std"
		{ time GOCACHE=$OUT/gocache-$name-cold go build -o "$OUT/cold-$bin" "$pkg"; } 2>"$OUT/time-cold"
		{ time GOCACHE=$OUT/gocache-$name-std go build -o "$OUT/std-$bin" "$pkg"; } 2>"$OUT/time-std"
		size=$(stat -c %s "$OUT/cold-$bin")
		# wall s / CPU s (user+sys of go build and its compilers)
		read -r cr cu cs <"$OUT/time-cold"
		read -r sr su ss <"$OUT/time-std"
		awk -v p="$pkg" -v cr="$cr" -v cc="$(awk -v u="$cu" -v s="$cs" 'BEGIN{print u+s}')" \
			-v sr="$sr" -v sc="$(awk -v u="$su" -v s="$ss" 'BEGIN{print u+s}')" -v z="$size" \
			'BEGIN { printf "BUILD\t%s\t%.1f s / %.1f s\t%.1f s / %.1f s\t%.2f MB\n", p, cr, cc, sr, sc, z / 1e6 }' >>"$RES"
		rm -rf "$OUT/gocache-$name-cold" "$OUT/gocache-$name-std" "$OUT/cold-$bin" "$OUT/std-$bin" "$OUT"/time-*
	done <<<"$TARGETS"
	rm -rf "$OUT/gocache-std"
fi

go build -o "$BIN/" ./cmd/...

# DRIVERS="mattn;ncruces -api=direct" runs a subset; the first is the reference.
IFS=';' read -r -a RUNNERS <<<"${DRIVERS:-mattn;modernc;ncruces -api=sql;ncruces -api=direct}"
for run in $(seq "$RUNS"); do
	for dir in $DIRS; do
		for r in "${RUNNERS[@]}"; do
			load=$(cut -d' ' -f1 /proc/loadavg)
			echo "run $run/$RUNS $dir $r (load $load)" >&2
			printf 'LOAD\t%s\n' "$load" >>"$RES"
			# shellcheck disable=SC2086
			"$BIN"/$r -dir "$dir" -rows "$ROWS" >>"$RES"
		done
	done
done

# Where does the capture overhead go? Capture variants that are NOT patina's
# design (see harness.CaptureVariant), tmpfs only, on mattn and ncruces direct.
if [[ -z "${SKIP_VARIANTS:-}" ]]; then
	VRES=$OUT/variants.tsv
	: >"$VRES"
	for run in $(seq "$RUNS"); do
		for v in noindex onestmt onestmt-noindex; do
			for r in "mattn" "ncruces -api=direct"; do
				echo "variant run $run/$RUNS $v $r (load $(cut -d' ' -f1 /proc/loadavg))" >&2
				# shellcheck disable=SC2086
				"$BIN"/$r -dir /dev/shm -rows "$ROWS" -only raw,capture -variant "$v" >>"$VRES"
			done
		done
	done
fi

"$BIN/report" <"$RES"
if [[ -z "${SKIP_VARIANTS:-}" ]]; then
	echo
	echo "## Capture variants (not patina's design), /dev/shm"
	"$BIN/report" <"$VRES" | sed -n '/per wall-clock second (median/,/^Relative/p;/per CPU second/,/^Relative/p' | grep -v '^Relative'
fi
echo >&2 "raw lines: $RES"
