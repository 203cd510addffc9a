"""Airflow DAG: tag the catalog every night, retrain weekly, with the catalog-tagger CLI.

Copy this file into your Airflow ``dags/`` folder. Every task shells out to the
``catalog-tagger`` console script (installed on the Airflow workers, e.g. in a
virtualenv), so the same commands run here as by hand, from cron or systemd.

    preprocess -> retrain_today? -> train -> check_model -> promote_model --+
                                 \\-> skip_retrain ------------------------+-> predict -> publish

- ``preprocess`` cleans and tokenizes the catalog (its report is a data check,
  and its output is what ``train`` learns from).
- ``retrain_today`` takes the retrain branch on the retrain weekday (Sunday by
  default), or on any day when the run is triggered with ``{"retrain": true}``.
- ``train`` writes a new model dir ``WORK_DIR/models/<ts>``; ``check_model``
  verifies its export and eval GAP@20; ``promote_model`` points the
  ``catalog_tagger_model_dir`` Variable at it and keeps the old value in
  ``catalog_tagger_previous_model_dir``.
- ``predict`` tags every video with the model the Variable names, into
  ``WORK_DIR/tags/<ts>`` (staged, then published with ``_SUCCESS``).
- ``publish`` fails the run unless ``_SUCCESS`` is there and the report
  balances, then writes ``WORK_DIR/tags/LATEST`` (the published directory).

Rolling back a model: set ``catalog_tagger_model_dir`` back to the value of
``catalog_tagger_previous_model_dir`` (or any older ``WORK_DIR/models/<ts>``)
and clear ``predict`` (and ``publish``) for the run to retag with it.

Airflow Variables (Admin -> Variables):

=================================  ==========================================
``catalog_tagger_catalog``         catalog path or glob (required)
``catalog_tagger_work_dir``        root of preprocessed/, models/, tags/ (required)
``catalog_tagger_model_dir``       model predict uses (required before the first
                                   retrain; set by ``promote_model``)
``catalog_tagger_bin``             console script (default ``catalog-tagger``)
``catalog_tagger_python``          interpreter of that install, for the checks
                                   (default ``python3``)
``catalog_tagger_runner_profile``  runner profile (default ``local``), e.g. a
                                   copy of deploy/runners/dataflow.args
``catalog_tagger_retrain_weekday`` ISO weekday of the retrain (default 7 = Sunday)
``catalog_tagger_min_eval_gap``    GAP@20 a new model must reach (default 0)
=================================  ==========================================

Paths may be local (shared by all workers) or gs:// / s3:// / hdfs://; the
checks read them through Beam's FileSystems. Works with Airflow 2.7+ and 3.
"""

from __future__ import annotations

import datetime

import pendulum

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
    from airflow.sdk import DAG, Variable
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.models import Variable
    from airflow.operators.bash import BashOperator
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.python import BranchPythonOperator, PythonOperator

# Jinja, rendered when a task runs (not when the scheduler parses this file).
BIN = "{{ var.value.get('catalog_tagger_bin', 'catalog-tagger') }}"
PYTHON = "{{ var.value.get('catalog_tagger_python', 'python3') }}"
PROFILE = "{{ var.value.get('catalog_tagger_runner_profile', 'local') }}"
CATALOG = "{{ var.value.catalog_tagger_catalog }}"
WORK_DIR = "{{ var.value.catalog_tagger_work_dir }}"
RUN = "{{ ts_nodash }}"
PREPROCESSED = f"{WORK_DIR}/preprocessed/{RUN}"
NEW_MODEL = f"{WORK_DIR}/models/{RUN}"
TAGS = f"{WORK_DIR}/tags/{RUN}"

PREPROCESS = f"""set -euo pipefail
"{BIN}" preprocess --runner-profile "{PROFILE}" \\
    --input "{CATALOG}" --output-dir "{PREPROCESSED}"
"""

TRAIN = f"""set -euo pipefail
"{BIN}" train --data-dir "{PREPROCESSED}" --model-dir "{NEW_MODEL}"
"""

CHECK_MODEL = f"""set -euo pipefail
"{PYTHON}" - "{NEW_MODEL}" "{{{{ var.value.get('catalog_tagger_min_eval_gap', '0') }}}}" <<'PY'
import json, sys
from apache_beam.io.filesystems import FileSystems

model_dir, min_gap = sys.argv[1], float(sys.argv[2])
card_path = FileSystems.join(model_dir, "saved_model", "assets.extra", "model_card.json")
if not FileSystems.exists(card_path):
    sys.exit(f"no exported model card at {{card_path}}: training did not finish")
with FileSystems.open(card_path) as handle:
    card = json.load(handle)
gap = card["metrics"]["eval"]["gap@20"]
print(f"model {{card['model_version']}}: eval GAP@20 {{gap:.4f}} (minimum {{min_gap}})")
if gap < min_gap:
    sys.exit(f"eval GAP@20 {{gap:.4f}} < {{min_gap}}: not promoting {{model_dir}}")
PY
"""

PREDICT = f"""set -euo pipefail
"{BIN}" predict --runner-profile "{PROFILE}" \\
    --input "{CATALOG}" \\
    --model-dir "{{{{ var.value.catalog_tagger_model_dir }}}}" \\
    --output-dir "{TAGS}"
"""

# predict publishes atomically (_staging -> tags/, dead_letters/, report, then
# _SUCCESS); this step verifies that and advances the LATEST pointer.
PUBLISH = f"""set -euo pipefail
"{PYTHON}" - "{TAGS}" "{WORK_DIR}/tags/LATEST" <<'PY'
import json, sys
from apache_beam.io.filesystems import FileSystems

out, latest = sys.argv[1], sys.argv[2]
if not FileSystems.exists(FileSystems.join(out, "_SUCCESS")):
    sys.exit(f"{{out}}/_SUCCESS is missing: the predict run did not publish")
with FileSystems.open(FileSystems.join(out, "predict_report.json")) as handle:
    report = json.load(handle)
records = report["records"]
if not records["balanced"]:
    sys.exit(f"predict report does not balance: {{records}}")
if records["tagged"] == 0:
    sys.exit("predict tagged no video")
print(json.dumps({{"model_version": report["model_version"], "records": records,
                  "dead_letters": report.get("dead_letters", {{}})}}))
with FileSystems.create(latest) as handle:
    handle.write(out.encode())
PY
"""


def _retrain_today(**context) -> str:
    """Branch: ``train`` on the retrain weekday (or when asked), else ``skip_retrain``."""
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    if "retrain" in conf:
        return "train" if conf["retrain"] else "skip_retrain"
    when = context.get("data_interval_end") or context.get("logical_date")
    when = when or pendulum.now("UTC")
    # The default is positional: Airflow 2 names it default_var, Airflow 3 default.
    weekday = int(Variable.get("catalog_tagger_retrain_weekday", 7))
    return "train" if when.isoweekday() == weekday else "skip_retrain"


def _promote_model(new_model_dir: str) -> None:
    """Points predict at the new model; remembers the old one for rollback."""
    current = Variable.get("catalog_tagger_model_dir", None)
    if current:
        Variable.set("catalog_tagger_previous_model_dir", current)
    Variable.set("catalog_tagger_model_dir", new_model_dir)
    print(f"catalog_tagger_model_dir: {current} -> {new_model_dir}")


with DAG(
    dag_id="catalog_tagger_nightly",
    description="catalog-tagger: preprocess, weekly retrain, predict, publish",
    schedule="30 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # runs share the model Variable and LATEST
    default_args={
        "owner": "catalog-tagger",
        "retries": 1,
        "retry_delay": datetime.timedelta(minutes=10),
    },
    tags=["catalog-tagger"],
) as dag:
    preprocess = BashOperator(
        task_id="preprocess",
        bash_command=PREPROCESS,
        execution_timeout=datetime.timedelta(hours=3),
    )
    retrain_today = BranchPythonOperator(task_id="retrain_today", python_callable=_retrain_today)
    train = BashOperator(
        task_id="train",
        bash_command=TRAIN,
        execution_timeout=datetime.timedelta(hours=4),
    )
    check_model = BashOperator(task_id="check_model", bash_command=CHECK_MODEL)
    promote_model = PythonOperator(
        task_id="promote_model",
        python_callable=_promote_model,
        op_kwargs={"new_model_dir": NEW_MODEL},
    )
    skip_retrain = EmptyOperator(task_id="skip_retrain")
    predict = BashOperator(
        task_id="predict",
        bash_command=PREDICT,
        # After either branch; never after a failed retrain.
        trigger_rule="none_failed_min_one_success",
        execution_timeout=datetime.timedelta(hours=3),
    )
    publish = BashOperator(task_id="publish", bash_command=PUBLISH)

    preprocess >> retrain_today >> [train, skip_retrain]
    train >> check_model >> promote_model >> predict
    skip_retrain >> predict
    predict >> publish
