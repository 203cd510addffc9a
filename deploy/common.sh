# Shared by deploy/*/submit.sh and deploy/dataflow/launch.sh (sourced, not run).
# Each script documents itself in its header comment, which usage() prints.

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

# check_job JOB: the first argument must name a Beam job of the CLI.
check_job() {
    case "${1:-}" in
        preprocess | predict | nightly | evaluate | tune-thresholds | similar) ;;
        "" | -h | --help) usage ;;
        *)
            echo "$(basename "$0"): unknown job '$1' (preprocess, predict, nightly, evaluate, tune-thresholds or similar)" >&2
            exit 2
            ;;
    esac
}

# environment_args: the SDK harness flags of a portable runner, appended to
# the array "args" from ENVIRONMENT_TYPE (LOOPBACK, DOCKER or EXTERNAL).
environment_args() {
    local sdk_image="${SDK_IMAGE:-apache/beam_python3.11_sdk:2.77.0}"
    local worker_pool="${WORKER_POOL:-localhost:50000}"
    case "${ENVIRONMENT_TYPE:-LOOPBACK}" in
        LOOPBACK) args+=(--environment_type LOOPBACK) ;;
        DOCKER)
            args+=(--environment_type DOCKER --environment_config "${sdk_image}")
            args+=(--setup_file ./setup.py)
            ;;
        EXTERNAL) args+=(--environment_type EXTERNAL --environment_config "${worker_pool}") ;;
        *)
            echo "$(basename "$0"): ENVIRONMENT_TYPE must be LOOPBACK, DOCKER or EXTERNAL" >&2
            exit 2
            ;;
    esac
}

# extra_requirements EXTRA: the pinned requirements of the installed package's
# extra EXTRA (setup.py's extras_require, the one place they are pinned), one
# per line, for a runner's --requirements_file.
extra_requirements() {
    "${PYTHON:-python3}" - "$1" <<'PY'
import sys
from importlib.metadata import requires

extra = sys.argv[1]
for requirement in requires("catalog-tagger") or []:
    spec, _, marker = requirement.partition(";")
    if marker.replace("'", '"').split() == ["extra", "==", f'"{extra}"']:
        print(spec.strip())
PY
}
