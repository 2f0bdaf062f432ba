#!/bin/bash
# The project's test command (README command (2)); .ci/run runs it in CI.
#   tests/run.sh [PYTEST ARGS...]        e.g.  tests/run.sh -k web
# 1. ./install.sh --dev --with-tests     system packages, .venv with .[test], ./var (idempotent:
#                                        seconds when everything is already there)
# 2. ruff check .
# 3. mypy (firmware and web layer)
# 4. python -m pytest -q [ARGS...]       the fixtures start their own PulseAudio
# Exits non-zero if any step fails; pytest's "no tests collected" (exit 5) is a failure too.
# CALLREC_TESTS_SKIP_INSTALL=1 skips step 1 (quick re-runs on a machine that is set up).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
VENV=${CALLREC_VENV:-$PWD/.venv}

SUMMARY=()
FAILED=0
record() { SUMMARY+=("$(printf '  %-8s %s' "$1" "$2")"); }
banner() { printf '\n===== %s =====\n' "$*"; }
print_summary() {
  banner "summary"
  printf '%s\n' "${SUMMARY[@]}"
}

# 1. Install (nothing else can run without it).
if [ "${CALLREC_TESTS_SKIP_INSTALL:-}" = 1 ]; then
  record install "skipped (CALLREC_TESTS_SKIP_INSTALL=1)"
else
  banner "install: ./install.sh --dev --with-tests"
  rc=0
  bash ./install.sh --dev --with-tests </dev/null || rc=$?
  if [ "$rc" -ne 0 ]; then
    record install "FAILED (exit $rc): see var/log/install.log"
    record ruff "not run"
    record mypy "not run"
    record pytest "not run"
    print_summary
    exit "$rc"
  fi
  record install ok
fi

# 2. Lint.
banner "ruff check ."
rc=0
"$VENV/bin/ruff" check . || rc=$?
if [ "$rc" -eq 0 ]; then record ruff ok; else record ruff "FAILED (exit $rc)"; FAILED=1; fi

# 3. Types (the firmware and the web layer; settings in pyproject.toml).
banner "mypy"
rc=0
"$VENV/bin/mypy" || rc=$?
if [ "$rc" -eq 0 ]; then record mypy ok; else record mypy "FAILED (exit $rc)"; FAILED=1; fi

# 4. Tests; the output is kept to repeat pytest's result line at the very end.
banner "python -m pytest -q $*"
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
"$VENV/bin/python" -m pytest -q "$@" 2>&1 | tee "$OUT"
rc=${PIPESTATUS[0]}
case $rc in
  0) record pytest ok ;;
  5) record pytest "FAILED: no tests were collected (pytest exit 5)"; FAILED=1 ;;
  *) record pytest "FAILED (pytest exit $rc)"; FAILED=1 ;;
esac

# pytest's own closing line, then the verdict, then the same counts as a plain last line.
RESULT=$(grep -E '(passed|failed|errors?|skipped|no tests ran).* in [0-9.]+s' "$OUT" | tail -n 1)
if [ -n "$RESULT" ]; then record "" "pytest said: $(sed -E 's/^=+ //; s/ =+$//' <<<"$RESULT")"; fi
print_summary
if [ "$FAILED" -ne 0 ]; then echo "RESULT: FAILED"; else echo "RESULT: OK"; fi
if [ -n "$RESULT" ]; then
  count() { grep -oE "[0-9]+ $1" <<<"$RESULT" | grep -oE '^[0-9]+' || echo 0; }
  printf 'pytest: %s passed, %s failed, %s skipped\n' "$(count passed)" \
    "$(($(count failed) + $(count 'errors?')))" "$(count skipped)"
fi
exit "$FAILED"
