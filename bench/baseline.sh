#!/usr/bin/env bash
# Builds another revision of this module for `npm run bench -- --baseline`: its dist/lib and
# dist/bench land in bench/results/baseline/ (under the repository, so node_modules resolves as
# for this build). Usage: npm run bench:baseline -- <git revision>
set -euo pipefail
rev=${1:?usage: npm run bench:baseline -- <git revision> (e.g. HEAD~3 or a commit hash)}
cd "$(dirname "$0")/.."
commit=$(git rev-parse --verify "$rev^{commit}")
work=$(mktemp -d)
trap 'git worktree remove --force "$work/src" >/dev/null 2>&1 || true; rm -rf "$work"; git worktree prune' EXIT
git worktree add --detach "$work/src" "$commit" >/dev/null
ln -s "$PWD/node_modules" "$work/src/node_modules"
(cd "$work/src" && npx tsc -p tsconfig.bench.json)
rm -rf bench/results/baseline
mkdir -p bench/results/baseline
cp -r "$work/src/dist/lib" "$work/src/dist/bench" bench/results/baseline/
git rev-parse --short "$commit" > bench/results/baseline/REVISION
echo "baseline $(cat bench/results/baseline/REVISION) built in bench/results/baseline; now: npm run bench -- --baseline --only=c,d,g --skip=nocookie,hot,bytes,roundtrips"
