#!/bin/sh
# Build the C harness against the kernels' sources and run it; the kernels' .c files are linked in directly.
#
#     sh src/fashion_cnn/kernels/harness/run.sh check   # test_kernels.c at every vector width this CPU runs
#                                                       # (baseline, AVX2, AVX-512), with and without OpenMP,
#                                                       # under AddressSanitizer and UBSan (-O1)
#     sh src/fashion_cnn/kernels/harness/run.sh bench   # bench_kernels.c, -O3, the widest width, OpenMP
#
# Settings (environment): BUILD, where the executables and logs go (default: a new folder under /tmp);
# CSRC, the kernels' sources (default: ../csrc beside this file; a test points it at a broken copy); CC
# (default gcc: the kernels use GCC's vector extensions); WIDTHS, e.g. WIDTHS=avx2 for one width only;
# THREADS, "openmp one-thread" (the default) or either alone.
# check prints every line that is not a PASS (FAIL, sanitizer reports; NOTE, a known difference, for the first
# build only) with its build's name, one "<build>: N passed, N failed (N notes)" line per build, and last the
# sum "N passed, N failed"; it exits 1 on any failure. A build that stops early (a sanitizer's report) or
# exits non-zero with no failure counted (a leak) counts one failure more. Every build's whole log stays in BUILD.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
csrc=${CSRC:-$here/../csrc}
build=${BUILD:-$(mktemp -d /tmp/fashion-cnn-harness.XXXXXX)}
cc=${CC:-gcc}
mkdir -p "$build"

widths="baseline"
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then widths="$widths avx2"; fi
if grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo; then
    widths="$widths avx512"
fi
widths=${WIDTHS:-$widths}
threads=${THREADS:-openmp one-thread}

# The instructions of each width, as kernels/build.py compiles them.
isa() {
    case $1 in
        baseline) echo "" ;;
        avx2) echo "-mavx2 -mfma" ;;
        avx512) echo "-mavx2 -mfma -mavx512f -mavx512bw -mavx512vl -DFASHION_CNN_AVX512" ;;
        *) echo "unknown width $1 (baseline, avx2, avx512)" >&2; exit 2 ;;
    esac
}

warnings="-Wall -Wextra -Wno-psabi -Wno-unknown-pragmas"  # psabi: GCC's note on vector arguments; pragmas: no -fopenmp
sanitize="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"

check() {
    total_passed=0 total_failed=0 notes_shown=""
    # The test and the reference are plain C: compiled once; the kernels once per build, linked in directly.
    # shellcheck disable=SC2086  # the flags are words
    for part in test_kernels reference; do $cc $warnings $sanitize -c "$here/$part.c" -o "$build/$part.o"; done
    for width in $widths; do
        for threading in $threads; do
            name="$width-$threading"
            flags=$(isa "$width")
            [ "$threading" = openmp ] && flags="$flags -fopenmp"
            # shellcheck disable=SC2086
            $cc $warnings $sanitize $flags -I"$csrc" -o "$build/test-$name" "$build/test_kernels.o" "$build/reference.o" \
                "$csrc"/*.c -lm
            code=0 log="$build/test-$name.log"
            # Three threads on any machine: images split unevenly, and fewer images than threads; passive: they
            # sleep at a barrier, not spin (a pytest worker is pinned to one core).
            OMP_NUM_THREADS=3 OMP_WAIT_POLICY=passive UBSAN_OPTIONS=print_stacktrace=1 "$build/test-$name" >"$log" 2>&1 || code=$?
            # Failures and sanitizer reports of every build; the NOTE lines (known differences) of the first only.
            grep -v -e '^PASS' -e ' passed, [0-9]* failed$' ${notes_shown:+-e '^NOTE'} "$log" | sed "s/^/$name: /" || true
            notes_shown=1
            passed=$(grep -c '^PASS' "$log" || true) failed=$(grep -c '^FAIL' "$log" || true)
            finished=$(grep -c '^[0-9]* passed, [0-9]* failed$' "$log" || true)
            if [ "$finished" -eq 0 ] || { [ "$code" -ne 0 ] && [ "$failed" -eq 0 ]; }; then failed=$((failed + 1)); fi
            echo "$name: $passed passed, $failed failed ($(grep -c '^NOTE' "$log" || true) notes)"
            total_passed=$((total_passed + passed)) total_failed=$((total_failed + failed))
        done
    done
    echo "logs: $build"
    echo "$total_passed passed, $total_failed failed"
    [ "$total_failed" -eq 0 ]
}

bench() {
    width=${widths##* }  # the widest
    # shellcheck disable=SC2046,SC2086
    $cc $warnings -O3 -fopenmp $(isa "$width") -I"$csrc" -o "$build/bench-$width" "$here/bench_kernels.c" "$here/reference.c" \
        "$csrc"/*.c -lm
    echo "$width, OpenMP"
    "$build/bench-$width"
}

case ${1:-} in
    check) check ;;
    bench) bench ;;
    *) echo "usage: sh $0 check|bench   (settings: BUILD, CSRC, CC, WIDTHS; see the top of this file)" >&2; exit 2 ;;
esac
