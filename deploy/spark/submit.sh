#!/usr/bin/env bash
# Submits a catalog-tagger Beam job (preprocess, predict, nightly, evaluate or
# tune-thresholds) to Apache Spark (3.x) through Beam's portable SparkRunner.
#
# Usage (from anywhere; the script works from the repository root):
#
#   SPARK_MASTER_URL=spark://spark-master:7077 ENVIRONMENT_TYPE=DOCKER \
#   deploy/spark/submit.sh predict \
#       --input 'hdfs:///catalog/*.jsonl.gz' \
#       --model-dir hdfs:///models/20261122T110023Z \
#       --output-dir hdfs:///tags/2026-11-22
#
# Everything after the job name goes to `catalog-tagger JOB` unchanged, after
# --runner-profile deploy/runners/spark.args and the overrides below (later
# flags win).
#
# How the pieces fit: this process builds the pipeline and hands it to a Beam
# *job server*, which translates it into a Spark application; Spark executors
# then run the Python code in an *SDK harness* chosen with --environment_type.
#
# Environment (all optional):
#   SPARK_MASTER_URL  Spark master (--spark_master_url; the profile says
#                     spark://localhost:7077; "local[4]" runs Spark inside the
#                     job server, for tests)
#   JOB_ENDPOINT      host:port of a running Beam Spark job server
#                     (--job_endpoint). Without it, Beam starts the Spark 3 job
#                     server jar itself: that needs Java 11+ and downloads the
#                     jar from Maven Central on first use. To run one yourself:
#                       docker run --net=host apache/beam_spark3_job_server:2.77.0 \
#                           --spark-master-url=${SPARK_MASTER_URL}
#                     then JOB_ENDPOINT=localhost:8099.
#                     (Alternative without a job server: --spark_submit_uber_jar
#                     --spark_rest_url=http://spark-master:6066 on a cluster with
#                     the REST submission server enabled.)
#   ENVIRONMENT_TYPE  where the Python user code runs (--environment_type):
#     LOOPBACK  (profile default) in THIS process: the executors call back into
#               it. Local testing only: this machine must stay up and be
#               reachable from every executor, and no packaging is needed.
#     DOCKER    every executor host starts a container of SDK_IMAGE
#               (--environment_config=apache/beam_python3.11_sdk:2.77.0 by
#               default) and this package is staged with --setup_file=./setup.py:
#               the container pip-installs it (and its dependencies, TensorFlow
#               included) at start-up. Executor hosts need Docker and, unless
#               SDK_IMAGE already has the package installed (the Flex Template
#               image in deploy/dataflow/flex_template/ does), access to PyPI.
#     EXTERNAL  a Beam worker pool already running on every executor node, in a
#               Python 3.11 environment where this package is installed:
#                 python -m apache_beam.runners.worker.worker_pool_main \
#                     --service_port=50000
#               WORKER_POOL gives its address (--environment_config, default
#               localhost:50000: each executor talks to its own node's pool).
#   SDK_IMAGE         image for DOCKER (default apache/beam_python3.11_sdk:2.77.0)
#   WORKER_POOL       address for EXTERNAL (default localhost:50000)
#   CATALOG_TAGGER    the console script (default: catalog-tagger on PATH)
#
# Paths: with DOCKER or EXTERNAL the workers are other machines, so --input,
# --model-dir and --output-dir must be on a filesystem they all see (hdfs://,
# s3://, gs://, or one shared mount); local paths only work with LOOPBACK on
# one machine. predict/nightly write the report and publish _SUCCESS from this
# process once the Spark job has finished, so keep it running until it exits.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=deploy/common.sh
source "${ROOT}/deploy/common.sh"
check_job "${1:-}"
job="$1"
shift
cd "${ROOT}" # --setup_file=./setup.py is relative to the repository root
CATALOG_TAGGER="${CATALOG_TAGGER:-catalog-tagger}"

args=(--runner-profile deploy/runners/spark.args)
[[ -n "${SPARK_MASTER_URL:-}" ]] && args+=(--spark_master_url "${SPARK_MASTER_URL}")
[[ -n "${JOB_ENDPOINT:-}" ]] && args+=(--job_endpoint "${JOB_ENDPOINT}")

environment_args

set -x
exec "${CATALOG_TAGGER}" "${job}" "${args[@]}" "$@"
