#!/usr/bin/env bash
# Classic Dataflow launch of a catalog-tagger Beam job (preprocess, predict,
# nightly, evaluate, tune-thresholds or similar) from this machine: the
# pipeline graph is built here, the work runs on Dataflow workers.
#
# Usage (from anywhere; the script works from the repository root):
#
#   PROJECT=my-project REGION=europe-west1 BUCKET=my-bucket \
#   SERVICE_ACCOUNT=tagger-worker@my-project.iam.gserviceaccount.com \
#   deploy/dataflow/launch.sh predict \
#       --input 'gs://my-bucket/catalog/*.jsonl.gz' \
#       --model-dir gs://my-bucket/models/20261122T110023Z \
#       --output-dir gs://my-bucket/tags/2026-11-22
#
# Everything after the job name goes to `catalog-tagger JOB` unchanged, after
# the runner profile and the overrides below (later flags win, so any Beam
# flag -- --max_num_workers=20, --machine_type=n2-highmem-4 -- can be added).
#
# Required environment:
#   PROJECT          GCP project that runs the job
#   REGION           Dataflow region (e.g. europe-west1)
#   BUCKET           bucket name (no gs://) for temp/ and staging/
#   SERVICE_ACCOUNT  e-mail of the worker service account
# Optional environment:
#   PACKAGING        how workers get this package (default: sdist)
#                      sdist       build dist/catalog_tagger-*.tar.gz here with
#                                  `python -m build --sdist` and pass it as
#                                  --extra_package (workers pip-install it)
#                      setup_file  keep the profile's --setup_file=./setup.py
#                                  (Beam builds the sdist itself at submission)
#                      image       workers run SDK_CONTAINER_IMAGE, which has
#                                  the package and its dependencies installed
#                                  (the Flex Template image works: see
#                                  flex_template/); fastest worker start-up
#                    An extra the job needs (similar: faiss, setup.py's
#                    `similar` extra) is not in the sdist's install: with sdist
#                    or setup_file the script passes its pins as
#                    --requirements_file (workers pip-install them); the
#                    Flex Template image has it installed.
#   SDK_CONTAINER_IMAGE  image for PACKAGING=image
#   PROFILE          runner profile (default: deploy/runners/dataflow.args)
#   JOB_NAME         Dataflow job name (default: catalog-tagger-JOB-UTCSTAMP)
#   CATALOG_TAGGER   the console script (default: catalog-tagger on PATH)
#   PYTHON           interpreter for `python -m build` (default: python3)
#   BUILD_FLAGS      extra flags for `python -m build`, e.g. --no-isolation
#                    on a machine without access to PyPI
#
# The launching machine needs this package installed (`pip install .`), Python
# 3.11 (the same minor version as the workers) and credentials for PROJECT
# (`gcloud auth application-default login`, or a launcher service account).
#
# IAM roles:
#   - launcher (you, or the CI/scheduler identity):
#       roles/dataflow.developer            create and manage jobs
#       roles/iam.serviceAccountUser        on SERVICE_ACCOUNT, to run jobs as it
#       roles/storage.objectAdmin           on BUCKET, to stage the package
#   - worker service account (SERVICE_ACCOUNT):
#       roles/dataflow.worker               run Dataflow work items
#       roles/storage.objectAdmin           on BUCKET (temp/staging) and on the
#                                           buckets of --input / --model-dir
#                                           (read) and --output-dir (write)
#     e.g.
#       gcloud projects add-iam-policy-binding "${PROJECT}" \
#           --member="serviceAccount:${SERVICE_ACCOUNT}" --role=roles/dataflow.worker
#       gcloud storage buckets add-iam-policy-binding "gs://${BUCKET}" \
#           --member="serviceAccount:${SERVICE_ACCOUNT}" --role=roles/storage.objectAdmin
#       gcloud projects add-iam-policy-binding "${PROJECT}" \
#           --member="user:you@example.com" --role=roles/dataflow.developer
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=deploy/common.sh
source "${ROOT}/deploy/common.sh"
check_job "${1:-}"
job="$1"
shift

missing=()
for var in PROJECT REGION BUCKET SERVICE_ACCOUNT; do
    [[ -n "${!var:-}" ]] || missing+=("${var}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "launch.sh: set ${missing[*]} (see the header of $0)" >&2
    exit 2
fi

cd "${ROOT}" # --setup_file=./setup.py in the profile is relative to the repo root

PACKAGING="${PACKAGING:-sdist}"
PROFILE="${PROFILE:-deploy/runners/dataflow.args}"
CATALOG_TAGGER="${CATALOG_TAGGER:-catalog-tagger}"
PYTHON="${PYTHON:-python3}"
stamp="$(date -u +%Y%m%d-%H%M%S)"
JOB_NAME="${JOB_NAME:-catalog-tagger-${job}-${stamp}}"

workdir="$(mktemp -d)"
trap 'rm -rf "${workdir}"' EXIT

packaging=()
case "${PACKAGING}" in
    sdist)
        # The profile names --setup_file; with --extra_package as well the
        # workers would install the package twice, so drop that line from a
        # copy of the profile.
        grep -v -e '^--setup_file' "${PROFILE}" >"${workdir}/dataflow.args"
        PROFILE="${workdir}/dataflow.args"
        # BUILD_FLAGS is word-split on purpose (several flags may be given).
        # shellcheck disable=SC2086
        "${PYTHON}" -m build --sdist --outdir "${workdir}/dist" ${BUILD_FLAGS:-} .
        sdist=("${workdir}"/dist/catalog_tagger-*.tar.gz)
        packaging=(--extra_package "${sdist[0]}")
        ;;
    setup_file) ;; # the profile's --setup_file=./setup.py does it
    image)
        : "${SDK_CONTAINER_IMAGE:?PACKAGING=image needs SDK_CONTAINER_IMAGE}"
        grep -v -e '^--setup_file' "${PROFILE}" >"${workdir}/dataflow.args"
        PROFILE="${workdir}/dataflow.args"
        packaging=(--sdk_container_image "${SDK_CONTAINER_IMAGE}")
        ;;
    *)
        echo "launch.sh: PACKAGING must be sdist, setup_file or image, not '${PACKAGING}'" >&2
        exit 2
        ;;
esac
if [[ "${job}" == similar && "${PACKAGING}" != image ]]; then
    extra_requirements similar >"${workdir}/requirements.txt"
    [[ -s "${workdir}/requirements.txt" ]] || {
        echo "launch.sh: install catalog-tagger here first (no 'similar' extra found)" >&2
        exit 2
    }
    packaging+=(--requirements_file "${workdir}/requirements.txt")
fi

# Not exec: the sdist in ${workdir} must outlive the submission, and the EXIT
# trap removes it afterwards. The job runs to completion (predict/nightly then
# publish their output from here), so keep this process alive until it ends.
set -x
"${CATALOG_TAGGER}" "${job}" \
    --runner-profile "${PROFILE}" \
    --project "${PROJECT}" \
    --region "${REGION}" \
    --temp_location "gs://${BUCKET}/tmp" \
    --staging_location "gs://${BUCKET}/staging" \
    --service_account_email "${SERVICE_ACCOUNT}" \
    --job_name "${JOB_NAME}" \
    "${packaging[@]}" \
    "$@"
