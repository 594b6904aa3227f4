#!/usr/bin/env bash
# Fails when a tracked file refers to the development workspace's shared folder (the
# parent directory's "shared"): a user's clone has no such folder, so the build, the tests
# and the demo must not read it (tests/fixtures/SOURCES.md holds what was copied from it).
set -euo pipefail
cd "$(dirname "$0")/../.."
pattern='\.\./shar''ed'   # split so that this file does not match itself
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  hits=$(git grep -n -I -E "$pattern" -- . ':!tests/repo/self_contained.sh' || true)
else
  hits=$(grep -rn -I -E "$pattern" --exclude-dir=.git --exclude-dir='build*' --exclude-dir=runs . \
           | grep -v '^./tests/repo/self_contained.sh:' || true)
fi
if [ -n "$hits" ]; then
  echo "tracked files refer to the workspace's shared folder, which a user's clone does not have:" >&2
  echo "$hits" >&2
  echo "copy the data into tests/fixtures/ (with its licence and source) and read it from there" >&2
  exit 1
fi
echo "self-contained: no tracked file refers to the workspace's shared folder"
