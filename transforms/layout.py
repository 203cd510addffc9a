"""File names of the preprocess output that the trainer reads back (one place)."""

PREPROCESS_CONFIG_FILE = "preprocess_config.json"  # also carried in the export's assets.extra
PREPROCESS_REPORT_FILE = "preprocess_report.json"
