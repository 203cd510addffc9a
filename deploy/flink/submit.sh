#!/usr/bin/env bash
# Submits a catalog-tagger Beam job (preprocess, predict, nightly, evaluate or
# tune-thresholds) to Apache Flink through Beam's portable FlinkRunner.
#
# Usage (from anywhere; the script works from the repository root):
#
#   FLINK_MASTER=flink-jobmanager:8081 ENVIRONMENT_TYPE=DOCKER \
#   deploy/flink/submit.sh predict \
#       --input 's3://my-bucket/catalog/*.jsonl.gz' \
#       --model-dir s3://my-bucket/models/20261122T110023Z \
#       --output-dir s3://my-bucket/tags/2026-11-22
#
# Everything after the job name goes to `catalog-tagger JOB` unchanged, after
# --runner-profile deploy/runners/flink.args and the overrides below (later
# flags win: --parallelism=16, --max_bundle_size, ... can be added).
#
# How the pieces fit: this process builds the pipeline and hands it to a Beam
# *job server*, which translates it into a Flink job; Flink task managers then
# run the Python code in an *SDK harness* chosen with --environment_type.
#
# Environment (all optional):
#   FLINK_MASTER      Flink REST address, host:port (--flink_master; the
#                     profile says localhost:8081; "[local]" runs an embedded
#                     Flink inside the job server, for tests)
#   FLINK_VERSION     your cluster's Flink major.minor (--flink_version); Beam
#                     2.77 publishes job servers for 1.19, 1.20, 2.0, 2.1, 2.2
#   JOB_ENDPOINT      host:port of a running Beam Flink job server
#                     (--job_endpoint). Without it, Beam starts the job server
#                     jar itself: that needs Java 11+ and downloads the jar from
#                     Maven Central on first use. To run one yourself instead:
#                       docker run --net=host \
#                           apache/beam_flink${FLINK_VERSION}_job_server:2.77.0 \
#                           --flink-master=${FLINK_MASTER}
#                     then JOB_ENDPOINT=localhost:8099.
#   ENVIRONMENT_TYPE  where the Python user code runs (--environment_type):
#     LOOPBACK  (profile default) in THIS process: the task managers call back
#               into it. Local testing only: this machine must stay up and be
#               reachable from every task manager, and no packaging is needed.
#     DOCKER    every task manager starts a container of SDK_IMAGE
#               (--environment_config=apache/beam_python3.11_sdk:2.77.0 by
#               default) and this package is staged with --setup_file=./setup.py:
#               the container pip-installs it (and its dependencies, TensorFlow
#               included) at start-up. Task managers need Docker and, unless
#               SDK_IMAGE already has the package installed (the Flex Template
#               image in deploy/dataflow/flex_template/ does), access to PyPI.
#     EXTERNAL  a Beam worker pool already running on every task manager node,
#               in a Python 3.11 environment where this package is installed:
#                 python -m apache_beam.runners.worker.worker_pool_main \
#                     --service_port=50000
#               WORKER_POOL gives its address (--environment_config, default
#               localhost:50000: each task manager talks to its own node's pool).
#   SDK_IMAGE         image for DOCKER (default apache/beam_python3.11_sdk:2.77.0)
#   WORKER_POOL       address for EXTERNAL (default localhost:50000)
#   CATALOG_TAGGER    the console script (default: catalog-tagger on PATH)
#
# Paths: with DOCKER or EXTERNAL the workers are other machines, so --input,
# --model-dir and --output-dir must be on a filesystem they all see (s3://,
# gs://, hdfs://, or one shared mount); local paths only work with LOOPBACK on
# one machine. predict/nightly write the report and publish _SUCCESS from this
# process once the Flink job has finished, so keep it running until it exits.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=deploy/common.sh
source "${ROOT}/deploy/common.sh"
check_job "${1:-}"
job="$1"
shift
cd "${ROOT}" # --setup_file=./setup.py is relative to the repository root
CATALOG_TAGGER="${CATALOG_TAGGER:-catalog-tagger}"

args=(--runner-profile deploy/runners/flink.args)
[[ -n "${FLINK_MASTER:-}" ]] && args+=(--flink_master "${FLINK_MASTER}")
[[ -n "${FLINK_VERSION:-}" ]] && args+=(--flink_version "${FLINK_VERSION}")
[[ -n "${JOB_ENDPOINT:-}" ]] && args+=(--job_endpoint "${JOB_ENDPOINT}")

environment_args

set -x
exec "${CATALOG_TAGGER}" "${job}" "${args[@]}" "$@"
