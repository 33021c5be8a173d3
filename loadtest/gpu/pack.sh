#!/usr/bin/env bash
# Builds the self-contained GPU benchmark bundle for a machine with no Node and no internet
# (see loadtest/gpu/README.md). Run on a Linux x86-64 machine that has run `npm ci`:
#
#   bash loadtest/gpu/pack.sh
#
# Produces, at the repo root (both gitignored):
#   .gpu-bundle/         node binary, dist/ (tsc), the benchmark as plain JS, the runtime node_modules
#   .gpu-bundle.tar.xz   the same, packed: this is what travels (carry), must stay < 50 MiB
#   .gl/                 Vulkan/GL loader .debs (apt-get download, amd64), only fetched if missing
# Then smoke-tests the packed bundle from an isolated temp dir (clean env, no repo node_modules).
#
# Env: SKIP_GL=1 skips the .deb download; SKIP_TRIAL=1 skips the smoke test; XZ_LEVEL (default 6).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
B=.gpu-bundle
TARBALL=.gpu-bundle.tar.xz
MAX_BYTES=$((50 * 1024 * 1024))
XZ_LEVEL=${XZ_LEVEL:-6}

say() { printf '[pack] %s\n' "$*"; }
die() { printf '[pack] ERROR: %s\n' "$*" >&2; exit 1; }

# ---- preconditions ----
[ "$(uname -s)/$(uname -m)" = "Linux/x86_64" ] || die "must run on Linux x86-64 (the GPU machine is x86-64; node and the native addons travel as binaries); this is $(uname -s)/$(uname -m)"
NODE_BIN=$(command -v node) || die "node not found on PATH"
NODE_BIN=$(readlink -f "$NODE_BIN")
[ -x node_modules/.bin/tsc ] || die "node_modules/.bin/tsc missing: run npm ci first"
[ -x node_modules/.bin/esbuild ] || die "node_modules/.bin/esbuild missing (vitest brings it): run npm ci first"
ORT_BIN=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
[ -f "$ORT_BIN/onnxruntime_binding.node" ] || die "$ORT_BIN missing"
[ -d node_modules/@img/sharp-linux-x64 ] && [ -d node_modules/@img/sharp-libvips-linux-x64 ] || die "sharp's linux-x64 packages missing from node_modules"
ldd "$NODE_BIN" 2>/dev/null | grep -q 'libnode\|libuv\.so' && die "$NODE_BIN links a shared libnode/libuv (a distro build): use an official nodejs.org binary"
say "node $("$NODE_BIN" --version) from $NODE_BIN"

rm -rf "$B" "$TARBALL"
mkdir -p "$B/bin" "$B/loadtest" "$B/node_modules"

# ---- 1. the project, compiled: same as `npm run build` but into the bundle (repo dist/ untouched) ----
say "tsc -p tsconfig.json --outDir $B/dist"
node_modules/.bin/tsc -p tsconfig.json --outDir "$B/dist" --sourceMap false
[ -f "$B/dist/inference/engine/inference-worker.js" ] || die "tsc did not emit dist/inference/engine/inference-worker.js"

# ---- 2. the benchmark: transpiled (not bundled) to ESM, its ../src/*.js imports pointed at ../dist/ ----
# Transpiling keeps the engine in dist/, so the worker entry (new URL('./inference-worker.js',
# import.meta.url) in worker-pool.js) resolves next to it exactly as in production.
say "esbuild loadtest/bench-inference.ts -> $B/loadtest/bench-inference.js"
node_modules/.bin/esbuild loadtest/bench-inference.ts --format=esm --platform=node --target=node20 \
  --outfile="$B/loadtest/bench-inference.js" --log-level=warning
sed -i "s#from \"\\.\\./src/#from \"../dist/#g; s#from '\\.\\./src/#from '../dist/#g" "$B/loadtest/bench-inference.js"
if grep -n '\.\./src/' "$B/loadtest/bench-inference.js"; then die "imports of ../src/ left in the transpiled benchmark"; fi
for f in $(grep -o "\.\./dist/[A-Za-z0-9_/.-]*\.js" "$B/loadtest/bench-inference.js" | sort -u); do
  [ -f "$B/loadtest/$f" ] || die "benchmark imports $f, which tsc did not emit"
done
cp loadtest/gpu/probe-webgpu.mjs "$B/loadtest/probe-webgpu.mjs"
# dist/ and the benchmark are ESM (the repo's package.json says "type": "module").
printf '{\n  "name": "adstream-gpu-bundle",\n  "private": true,\n  "type": "module"\n}\n' >"$B/package.json"

# ---- 3. node itself ----
cp "$NODE_BIN" "$B/bin/node"

# ---- 4. the runtime packages: what dist/ + the benchmark import at run time, and their deps ----
# The bench's main thread imports sharp and onnx-proto; the worker imports onnxruntime-node (checked
# with esbuild --metafile when this script was written; the smoke test below proves it still holds).
# Left out: install-time deps of onnxruntime-node (adm-zip, global-agent: its postinstall
# downloader) and type-only packages (@types/*).
say "copying runtime packages"
"$NODE_BIN" - "$ROOT" "$B/node_modules" <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const [root, dest] = process.argv.slice(2);
const nm = path.join(root, 'node_modules');
const roots = ['onnxruntime-node', 'sharp', 'onnx-proto'];
const skip = new Set(['adm-zip', 'global-agent']);
const seen = new Set();
const queue = [...roots];
while (queue.length) {
  const name = queue.shift();
  if (seen.has(name) || skip.has(name) || name.startsWith('@types/')) continue;
  const dir = path.join(nm, name);
  if (!fs.existsSync(path.join(dir, 'package.json'))) {
    if (roots.includes(name)) throw new Error(`${name} is not installed`);
    continue; // an optional dependency for another platform
  }
  if (fs.existsSync(path.join(dir, 'node_modules'))) throw new Error(`${name} has a nested node_modules; extend pack.sh to copy it`);
  seen.add(name);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  queue.push(...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {}));
}
for (const name of [...seen].sort()) {
  fs.cpSync(path.join(nm, name), path.join(dest, name), { recursive: true, dereference: true });
  console.log(`  ${name}`);
}
EOF
# Prune what the runtime never loads: other platforms' ORT binaries, protobufjs's CLI (20 MB with its
# own node_modules), source maps, TypeScript declarations.
find "$B/node_modules/onnxruntime-node/bin/napi-v6" -mindepth 2 -maxdepth 2 -type d ! -path '*/linux/x64' -exec rm -rf {} +
find "$B/node_modules/onnxruntime-node/bin/napi-v6" -mindepth 1 -maxdepth 1 -type d ! -name linux -exec rm -rf {} +
rm -rf "$B/node_modules/protobufjs/cli"
find "$B/node_modules" \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -type f -delete
[ -f "$B/$ORT_BIN/libonnxruntime.so.1" ] || die "pruned too much: $B/$ORT_BIN/libonnxruntime.so.1 missing"
say "bundle folder: $(du -sh "$B" | cut -f1) (node $(du -sh "$B/bin/node" | cut -f1), node_modules $(du -sh "$B/node_modules" | cut -f1), dist $(du -sh "$B/dist" | cut -f1))"

# ---- 5. pack ----
say "packing $TARBALL (xz -$XZ_LEVEL, takes ~30 s)"
tar -C "$B" -cf - . | xz -T0 "-$XZ_LEVEL" >"$TARBALL"
BYTES=$(stat -c %s "$TARBALL")
say "$TARBALL: $BYTES bytes ($(awk "BEGIN{printf \"%.1f\", $BYTES/1048576}") MiB)"
[ "$BYTES" -lt "$MAX_BYTES" ] || die "$TARBALL is over 50 MiB: the Vulkan debs and the working tree must fit in 64 MiB too"

# ---- 6. smoke test from an isolated copy: clean env, no NODE_PATH, no node on PATH, no parent node_modules ----
if [ "${SKIP_TRIAL:-0}" != 1 ]; then
  T=$(mktemp -d /tmp/gpu-bundle-trial.XXXXXX)
  trap 'rm -rf "$T"' EXIT
  for d in "$T" /tmp /; do [ ! -e "$d/node_modules" ] || die "$d/node_modules exists: the trial would not be isolated"; done
  mkdir -p "$T/b" "$T/home"
  xz -dc "$TARBALL" | tar -C "$T/b" -xf -
  say "trial 1/2: probe (onnxruntime-node + dist scorer graph) on cpu"
  (cd "$T/b" && env -i HOME="$T/home" PATH=/nonexistent TMPDIR="$T" ./bin/node loadtest/probe-webgpu.mjs cpu) || die "probe on cpu failed from the packed bundle"
  say "trial 2/2: benchmark, 0.2 s per phase, 1 worker, cpu (every model, sharp decode, worker threads)"
  (cd "$T/b" && env -i HOME="$T/home" PATH=/nonexistent TMPDIR="$T" ./bin/node loadtest/bench-inference.js --seconds 0.2 --workers 1 --providers cpu --ads 1000) >"$T/trial.log" 2>&1 || { cat "$T/trial.log"; die "benchmark failed from the packed bundle"; }
  tail -n 1 "$T/trial.log" | grep -q '^{"machine"' || { cat "$T/trial.log"; die "benchmark printed no JSON line"; }
  sed 's/^/  | /' "$T/trial.log" | tail -n 8
  say "trial passed"
fi

# ---- 7. Vulkan loaders for the device (its README: apt-get download, amd64), once ----
if [ "${SKIP_GL:-0}" != 1 ]; then
  if ls .gl/*.deb >/dev/null 2>&1; then
    say ".gl/ already holds $(ls .gl/*.deb | wc -l) .deb files: not downloading"
  else
    command -v apt-get >/dev/null || die "apt-get not found: fetch the .debs into .gl/ on a Debian/Ubuntu machine (see README), or SKIP_GL=1"
    say "downloading Vulkan/GL loader .debs into .gl/"
    mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    # shellcheck disable=SC2086
    apt-get $o update
    # shellcheck disable=SC2086
    (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  fi
  ls -la .gl/
fi

# ---- summary: what one device call will carry ----
TREE=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- 2>/dev/null | tail -n 1 | cut -f1)
GL=$(du -cb .gl/*.deb 2>/dev/null | tail -n 1 | cut -f1 || echo 0)
TOTAL=$((TREE + BYTES + ${GL:-0}))
say "transfer: working tree $TREE + bundle $BYTES + .gl ${GL:-0} = $TOTAL bytes ($(awk "BEGIN{printf \"%.1f\", $TOTAL/1048576}") MiB of 64 MiB)"
[ "$TOTAL" -lt $((64 * 1024 * 1024)) ] || die "over the device's 64 MiB transfer limit"
say "done. Device call: carry [\"$TARBALL\", \".gl\"], command: bash loadtest/gpu/run-on-device.sh"
