#!/usr/bin/env bash
# Builds the catalog-tagger Flex Template: the image (Cloud Build, or local
# Docker) in Artifact Registry, and the template spec file on Cloud Storage.
#
# Usage:
#   PROJECT=my-project REGION=europe-west1 BUCKET=my-bucket \
#   deploy/dataflow/flex_template/build.sh
#
# Required environment:
#   PROJECT      GCP project
#   REGION       region of the Artifact Registry repository and of the jobs
#   BUCKET       bucket name (no gs://) for the template spec, temp/ and staging/
# Optional environment:
#   REPOSITORY   Artifact Registry Docker repository (default: catalog-tagger);
#                create it once with
#                  gcloud artifacts repositories create "${REPOSITORY}" \
#                      --repository-format=docker --location="${REGION}"
#   TAG          image tag (default: the package version from setup.py)
#   IMAGE        full image name (default:
#                ${REGION}-docker.pkg.dev/${PROJECT}/${REPOSITORY}/catalog-tagger:${TAG})
#   TEMPLATE     spec file path (default: gs://${BUCKET}/templates/catalog-tagger-${TAG}.json)
#   BUILDER      cloudbuild (default) or docker (build and push from this
#                machine; needs `gcloud auth configure-docker ${REGION}-docker.pkg.dev`)
#
# IAM roles for whoever runs this script:
#   roles/cloudbuild.builds.editor   submit the Cloud Build (BUILDER=cloudbuild)
#   roles/artifactregistry.writer    push the image
#   roles/storage.admin              upload the build context and the spec file
# To run the template, the worker service account additionally needs
# roles/artifactregistry.reader on the repository (it pulls the image), besides
# roles/dataflow.worker and roles/storage.objectAdmin (see ../launch.sh).
set -euo pipefail

for var in PROJECT REGION BUCKET; do
    if [[ -z "${!var:-}" ]]; then
        sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
        echo "build.sh: set ${var}" >&2
        exit 2
    fi
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "${ROOT}" # the build context is the repository root
HERE="deploy/dataflow/flex_template"

REPOSITORY="${REPOSITORY:-catalog-tagger}"
TAG="${TAG:-$(sed -n 's/^ *version="\([^"]*\)".*/\1/p' setup.py)}"
IMAGE="${IMAGE:-${REGION}-docker.pkg.dev/${PROJECT}/${REPOSITORY}/catalog-tagger:${TAG}}"
TEMPLATE="${TEMPLATE:-gs://${BUCKET}/templates/catalog-tagger-${TAG}.json}"
BUILDER="${BUILDER:-cloudbuild}"

set -x
case "${BUILDER}" in
    cloudbuild)
        # `gcloud builds submit --tag` only builds a Dockerfile at the context
        # root, so a one-step build config names ours. The upload skips what
        # .gitignore lists (.venv, build/, ...) when there is no .gcloudignore.
        config="$(mktemp --suffix=.yaml)"
        trap 'rm -f "${config}"' EXIT
        cat >"${config}" <<YAML
steps:
  - name: gcr.io/cloud-builders/docker
    env: ["DOCKER_BUILDKIT=1"]
    args: ["build", "-f", "${HERE}/Dockerfile", "-t", "${IMAGE}", "."]
images: ["${IMAGE}"]
YAML
        gcloud builds submit --project "${PROJECT}" --config "${config}" .
        ;;
    docker)
        DOCKER_BUILDKIT=1 docker build -f "${HERE}/Dockerfile" -t "${IMAGE}" .
        docker push "${IMAGE}"
        ;;
    *)
        echo "build.sh: BUILDER must be cloudbuild or docker, not '${BUILDER}'" >&2
        exit 2
        ;;
esac

gcloud dataflow flex-template build "${TEMPLATE}" \
    --project "${PROJECT}" \
    --image "${IMAGE}" \
    --sdk-language PYTHON \
    --metadata-file "${HERE}/metadata.json"
set +x

cat <<EOF

Template: ${TEMPLATE}
Image:    ${IMAGE}

Run it (SERVICE_ACCOUNT: the worker service account, see ../launch.sh):

  gcloud dataflow flex-template run "catalog-tagger-predict-\$(date -u +%Y%m%d-%H%M%S)" \\
      --project "${PROJECT}" --region "${REGION}" \\
      --template-file-gcs-location "${TEMPLATE}" \\
      --service-account-email "\${SERVICE_ACCOUNT}" \\
      --temp-location "gs://${BUCKET}/tmp" --staging-location "gs://${BUCKET}/staging" \\
      --parameters job=predict \\
      --parameters input="gs://${BUCKET}/catalog/*.jsonl.gz" \\
      --parameters model_dir="gs://${BUCKET}/models/MODEL_VERSION" \\
      --parameters output_dir="gs://${BUCKET}/tags/\$(date -u +%Y-%m-%d)" \\
      --parameters sdk_container_image="${IMAGE}"

Caveat (deploy/README.md, "Dataflow Flex Template"): the jobs write their
report and publish _SUCCESS in the launching process after the pipeline ends,
which a Flex Template launcher does not wait for; until that moves into the
pipeline, use ../launch.sh for runs whose _SUCCESS you rely on.
EOF
