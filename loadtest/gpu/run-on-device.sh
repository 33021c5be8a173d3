#!/usr/bin/env bash
# The device command (see loadtest/gpu/README.md): run from the repo root of the working-tree copy on
# the GPU machine, with .gpu-bundle.tar.xz and .gl carried (both made by loadtest/gpu/pack.sh):
#
#   bash loadtest/gpu/run-on-device.sh
#
# 1. Vulkan/GL loaders: unpacks .gl/*.deb into / and runs ldconfig (the device README's prelude).
# 2. Unpacks the bundle (node + dist + runtime node_modules) into $BUNDLE_DIR.
# 3. nvidia-smi summary; a WebGPU probe (seconds), retried with the device README's VK_DRIVER_FILES
#    fallback if the first try gets no adapter.
# 4. The inference benchmark twice, same settings: --providers cpu first (the baseline, ~50 s, so it
#    survives a WebGPU run that hangs), then --providers webgpu,cpu, cut off at the DEADLINE so that
#    results.json is always written before the device call's own timeout (~300 s).
#    Logs: $OUT/bench-webgpu.log, $OUT/bench-cpu.log (the engine's "fell back" warning, with ORT's
#    reason, stays in the log); both JSON lines, with the provider each model really ran on, go to
#    $OUT/results.json. A comparison table is printed last.
# Exits 0 when both runs printed their JSON line, also when WebGPU fell back to CPU (results.json
# says so); 1 otherwise.
#
# Env (all optional): OUT (default bench-out/gpu-local), WORKERS (8), BENCH_SECONDS (3),
# CPU_TIMEOUT (s, 120), DEADLINE (s from start by which the webgpu run must end, 270), BUNDLE_DIR (/tmp/adstream-gpu-bundle),
# GL_ROOT (where the .debs go; default / when nvidia-smi exists, else a temp dir + LD_LIBRARY_PATH,
# so a trial on a workstation never writes into its /).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/bench-out/gpu-local}
mkdir -p "$OUT"
WORKERS=${WORKERS:-8}
BENCH_SECONDS=${BENCH_SECONDS:-3}
CPU_TIMEOUT=${CPU_TIMEOUT:-120}
DEADLINE=${DEADLINE:-270}
BUNDLE_DIR=${BUNDLE_DIR:-/tmp/adstream-gpu-bundle}
ENVLOG=$OUT/env.log
: >"$ENVLOG"
T0=$(date +%s)

log() { printf '[run +%ss] %s\n' "$(($(date +%s) - T0))" "$*" | tee -a "$ENVLOG"; }

# ---- 1. Vulkan / GL loaders ----
HAVE_SMI=0
command -v nvidia-smi >/dev/null 2>&1 && HAVE_SMI=1
if [ -z "${GL_ROOT:-}" ]; then
  if [ "$HAVE_SMI" = 1 ]; then GL_ROOT=/; else GL_ROOT=$(mktemp -d /tmp/glroot.XXXXXX); fi
fi
if ls .gl/*.deb >/dev/null 2>&1; then
  if command -v dpkg >/dev/null 2>&1; then
    for f in .gl/*.deb; do dpkg -x "$f" "$GL_ROOT"; done
    if [ "$GL_ROOT" = / ]; then
      ldconfig
    else
      export LD_LIBRARY_PATH="$GL_ROOT/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
    log "unpacked $(ls .gl/*.deb | wc -l) loader .debs into $GL_ROOT"
  else
    log "dpkg not found: .gl/*.deb NOT unpacked (WebGPU will likely find no Vulkan loader)"
  fi
else
  log "no .gl/*.deb here (carry .gl; pack.sh downloads them): loaders NOT unpacked"
fi
if ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  log "libvulkan.so.1 in the linker cache: $(ldconfig -p | grep -m1 'libvulkan\.so\.1' | sed 's/.*=> //')"
elif [ -n "${LD_LIBRARY_PATH:-}" ] && ls "${LD_LIBRARY_PATH%%:*}"/libvulkan.so.1 >/dev/null 2>&1; then
  log "libvulkan.so.1 via LD_LIBRARY_PATH=${LD_LIBRARY_PATH%%:*}"
else
  log "no libvulkan.so.1 found: WebGPU cannot get an adapter"
fi
for d in /etc/vulkan/icd.d /usr/share/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d; do
  [ -d "$d" ] && log "Vulkan ICD files in $d: $(ls "$d" | tr '\n' ' ')"
done

# ---- 2. the bundle ----
if [ -f .gpu-bundle.tar.xz ]; then
  rm -rf "$BUNDLE_DIR" && mkdir -p "$BUNDLE_DIR"
  if command -v xz >/dev/null 2>&1; then
    xz -dc .gpu-bundle.tar.xz | tar -C "$BUNDLE_DIR" -xf -
  else
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' .gpu-bundle.tar.xz "$BUNDLE_DIR"
  fi || { log "ERROR: could not unpack .gpu-bundle.tar.xz"; exit 1; }
  log "unpacked .gpu-bundle.tar.xz into $BUNDLE_DIR ($(du -sh "$BUNDLE_DIR" | cut -f1))"
elif [ -x .gpu-bundle/bin/node ]; then
  BUNDLE_DIR=$ROOT/.gpu-bundle
  log "no .gpu-bundle.tar.xz: using the unpacked $BUNDLE_DIR"
else
  log "ERROR: .gpu-bundle.tar.xz missing: run bash loadtest/gpu/pack.sh and carry it"
  exit 1
fi
NODE=$BUNDLE_DIR/bin/node
"$NODE" --version >/dev/null 2>&1 || { log "ERROR: $NODE does not run here"; exit 1; }
log "node $("$NODE" --version), $(nproc) CPUs, $(uname -sr)"

# ---- 3. GPU summary ----
GPU_SUMMARY="none: nvidia-smi not found"
if [ "$HAVE_SMI" = 1 ]; then
  GPU_SUMMARY=$(nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,utilization.gpu,clocks.sm,clocks.max.sm --format=csv,noheader 2>&1 | head -n 4)
  log "GPU: $GPU_SUMMARY"
  nvidia-smi >>"$ENVLOG" 2>&1
else
  log "nvidia-smi not found: no NVIDIA driver visible here (WebGPU will fall back to CPU)"
fi

# ---- 4. WebGPU probe: which Vulkan driver setting gives an adapter ----
PROBES=$OUT/probes.jsonl
: >"$PROBES"
probe() {
  local line
  line=$(cd "$BUNDLE_DIR" && timeout 120 "$NODE" loadtest/probe-webgpu.mjs webgpu 2>>"$ENVLOG" | tail -n 1)
  [ -n "$line" ] || line='{"provider":"webgpu","ok":false,"error":"probe printed nothing (crashed or timed out)"}'
  printf '{"vk_driver_files":"%s",%s\n' "${VK_DRIVER_FILES:-}" "${line#\{}" >>"$PROBES"
  log "webgpu probe (VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}): $line"
  case $line in *'"ok":true'*) return 0 ;; *) return 1 ;; esac
}
NV_ICD=${NV_ICD:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
NV_EGL=${NV_EGL:-/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json}
if ! probe; then
  if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$NV_ICD" ]; then
    export VK_DRIVER_FILES=$NV_ICD
    [ -f "$NV_EGL" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$NV_EGL
    if ! probe; then
      log "WebGPU has no adapter with either driver setting: the webgpu run will fall back to CPU"
      unset VK_DRIVER_FILES __EGL_VENDOR_LIBRARY_FILENAMES
    fi
  else
    log "WebGPU has no adapter (no $NV_ICD to retry with): the webgpu run will fall back to CPU"
  fi
fi

# ---- 5. the benchmark, twice ----
bench() { # name providers timeout_s
  local name=$1 providers=$2 limit=$3 dmon=''
  log "benchmark $name: --providers $providers --seconds $BENCH_SECONDS --workers $WORKERS (timeout ${limit}s)"
  if [ "$HAVE_SMI" = 1 ]; then
    nvidia-smi dmon -s um -d 1 >"$OUT/gpu-dmon-$name.log" 2>&1 &
    dmon=$!
  fi
  (cd "$BUNDLE_DIR" && timeout "$limit" "$NODE" loadtest/bench-inference.js \
    --seconds "$BENCH_SECONDS" --workers "$WORKERS" --providers "$providers") 2>&1 | tee "$OUT/bench-$name.log"
  local rc=${PIPESTATUS[0]}
  [ -n "$dmon" ] && { kill "$dmon" 2>/dev/null; wait "$dmon" 2>/dev/null; }
  echo "$rc" >"$OUT/.rc-$name"
  if [ "$rc" = 124 ]; then log "benchmark $name TIMED OUT after ${limit}s: no JSON line for it"; else log "benchmark $name exited $rc"; fi
}
bench cpu cpu "$CPU_TIMEOUT"
LEFT=$((DEADLINE - ($(date +%s) - T0)))
[ "$LEFT" -ge 60 ] || LEFT=60
bench webgpu webgpu,cpu "$LEFT"

# ---- 6. results.json and the comparison table ----
"$NODE" - "$OUT" "$GPU_SUMMARY" "${VK_DRIVER_FILES:-}" <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const [out, gpu, vkDriverFiles] = process.argv.slice(2);
const read = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
const parse = (l) => { try { return JSON.parse(l); } catch { return undefined; } };
const runs = {};
for (const name of ['webgpu', 'cpu']) {
  const lines = read(path.join(out, `bench-${name}.log`)).split('\n').filter((l) => l.startsWith('{'));
  const result = lines.map(parse).filter((j) => j && j.machine && j.models).pop() ?? null;
  const warns = lines.map(parse).filter((j) => j && j.level === 'warn');
  const fellBack = {};
  for (const w of warns.filter((w) => w.msg === 'inference model fell back to another execution provider')) fellBack[w.model] ??= { provider: w.provider, failed: w.failed };
  const mixed = warns.filter((w) => w.msg === 'inference workers run a model on different execution providers').map((w) => ({ model: w.model, providers: w.providers }));
  const actual = {};
  for (const m of Object.keys(result?.models ?? {})) actual[m] = fellBack[m]?.provider ?? result.providers[0];
  runs[name] = {
    exit_code: Number(read(path.join(out, `.rc-${name}`)).trim() || NaN),
    requested_providers: result?.providers ?? null,
    actual_providers: actual,
    fell_back: fellBack,
    mixed_providers: mixed,
    result,
  };
  fs.rmSync(path.join(out, `.rc-${name}`), { force: true });
}
const probes = read(path.join(out, 'probes.jsonl')).split('\n').filter(Boolean).map(parse);
const doc = { generated: new Date().toISOString(), gpu, vk_driver_files: vkDriverFiles || null, webgpu_probes: probes, runs };
fs.writeFileSync(path.join(out, 'results.json'), JSON.stringify(doc, null, 2) + '\n');

const w = runs.webgpu.result, c = runs.cpu.result;
// ORT prefixes its messages with a source location and the failed check; the reason is after it.
const short = (r) => String(r ?? '').replace(/^\/onnxruntime_src\/\S+ .*? was false\. /, '').slice(0, 300);
console.log(`\n==== GPU benchmark summary (${out}/results.json) ====`);
console.log(`gpu: ${gpu}`);
console.log(`webgpu probe: ${probes.map((p) => `${p.ok ? `ok, max |diff| ${p.maxAbsDiff}` : `FAILED: ${short(p.error)}`} (VK_DRIVER_FILES=${p.vk_driver_files || 'unset'})`).join(' | ') || 'not run'}`);
for (const name of ['cpu', 'webgpu']) if (!runs[name].result) console.log(`${name} run: NO RESULT (exit ${runs[name].exit_code}; see bench-${name}.log)`);
const groups = {};
for (const [m, f] of Object.entries(runs.webgpu.fell_back)) (groups[`${f.provider}: ${f.failed.map((x) => `${x.provider}: ${short(x.reason)}`).join('; ')}`] ??= []).push(m);
for (const [why, ms] of Object.entries(groups)) console.log(`webgpu run: ${ms.join(', ')} fell back to ${why}`);
for (const x of runs.webgpu.mixed_providers) console.log(`webgpu run: workers disagree for ${x.model}: ${x.providers.join(', ')}`);
const pad = (s, n) => String(s).padStart(n);
console.log(`items/s; comp p99 in ms (batched phase); 'ran on' = provider of the webgpu,cpu run; last column = batched/s webgpu,cpu run over cpu run`);
console.log(`${' '.repeat(17)} | ${'---------- webgpu,cpu run ----------'.padEnd(41)} | ${'-------------- cpu run --------------'.padEnd(41)} |`);
console.log(`${'model'.padEnd(8)} ${pad('ran on', 8)} | ${pad('batch-1', 9)} ${pad('batched', 10)} ${pad('32-item', 10)} ${pad('comp p99', 9)} | ${pad('batch-1', 9)} ${pad('batched', 10)} ${pad('32-item', 10)} ${pad('comp p99', 9)} | ${pad('x', 6)}`);
for (const m of ['image', 'text', 'click', 'scorer']) {
  const a = w?.models?.[m], b = c?.models?.[m];
  const cols = (r) => (r ? [pad(r.batch1_items_per_s, 9), pad(r.batched_items_per_s, 10), pad(r.chunked_items_per_s, 10), pad(r.compute_p99_ms, 9)] : [pad('-', 9), pad('-', 10), pad('-', 10), pad('-', 9)]).join(' ');
  const ratio = a && b ? (a.batched_items_per_s / b.batched_items_per_s).toFixed(2) : '-';
  console.log(`${m.padEnd(8)} ${pad(runs.webgpu.actual_providers[m] ?? '-', 8)} | ${cols(a)} | ${cols(b)} | ${pad(ratio, 6)}`);
}
console.log(`image decode/s (sharp): webgpu run ${w?.image_decode_per_s ?? '-'}, cpu run ${c?.image_decode_per_s ?? '-'}`);
console.log(`machine: ${c?.machine ?? w?.machine ?? '-'}; workers ${c?.workers ?? w?.workers ?? '-'}`);
process.exitCode = w && c ? 0 : 1;
EOF
RC=$?
log "done (exit $RC); files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
exit "$RC"
