#!/bin/sh
# Build the kernels' C tests against ../csrc and run them: every vector width this CPU runs (baseline, AVX2,
# AVX-512), with and without OpenMP, under AddressSanitizer and UndefinedBehaviorSanitizer.
#
#     sh src/fashion_cnn/kernels/harness/run.sh [CSRC_DIR] [BUILD_DIR]
#
# CSRC_DIR (default: ../csrc beside this file) lets a test point it at a changed copy of the sources.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
csrc=${1:-$here/../csrc}
build=${2:-$(mktemp -d)}
cc=${CC:-cc}
widths="baseline"
grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && widths="$widths avx2"
grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo && widths="$widths avx512"
widths=${WIDTHS:-$widths}  # WIDTHS="avx2" runs one width only
status=0
for width in $widths; do
    case $width in
        baseline) isa="" ;;
        avx2) isa="-mavx2 -mfma" ;;
        avx512) isa="-mavx2 -mfma -mavx512f -mavx512bw -mavx512vl -DFASHION_CNN_AVX512" ;;
    esac
    for threads in -fopenmp ""; do
        name="$width${threads:+-openmp}"
        # shellcheck disable=SC2086  # the flags are words
        $cc -std=c11 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all $isa $threads \
            -I"$csrc" -o "$build/test-$name" "$here/test_kernels.c" "$csrc"/*.c -lm
        echo "== $name"
        OMP_NUM_THREADS=2 "$build/test-$name" >"$build/test-$name.log" 2>&1 || status=1
        grep -v '^PASS' "$build/test-$name.log" | sed "s/^/$name: /"  # failures, sanitizer reports, the count
    done
done
exit $status
