"""catalog-tagger: tag a video catalog with categories, at catalog scale.

setup.py (not only pyproject.toml) because Beam workers install the pipeline
package with ``--setup_file ./setup.py`` on Dataflow, Flink and Spark.
"""

import pathlib

from setuptools import find_packages, setup

REQUIRES = [
    "apache-beam==2.77.0",
    "tensorflow==2.21.0",
    "tensorflow-transform==1.21.0",
    "tensorflow-text==2.21.1",  # NFKC case folding in the transform graph
    "tf-keras==2.21.0",
    "tensorboard==2.21.0",
    "nltk==3.10.4",
    "orjson==3.13.0",  # catalog lines in, tag rows out
    "numpy>=1.26,<3",
    "matplotlib==3.11.2",
    "optuna==5.0.0",  # train --tune
]

setup(
    name="catalog-tagger",
    version="0.1.0",
    description="Batch multi-label tagging of video catalogs with Beam, tf.Transform and Keras.",
    long_description=pathlib.Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["pipelines*", "transforms*", "models*"]),
    package_data={"transforms": ["data/*.txt"], "pipelines": ["profiles/*.args"]},
    include_package_data=True,
    install_requires=REQUIRES,
    extras_require={
        "dev": ["pytest==9.0.3", "ruff==0.17.6", "build"],
        "bench": ["scikit-learn==1.9.1", "fasttext-numpy2==0.10.4"],
        "serve": ["waitress==3.0.2"],  # catalog-tagger serve
        "similar": ["faiss-cpu==1.15.1"],  # catalog-tagger similar
    },
    entry_points={"console_scripts": ["catalog-tagger=pipelines.cli:main"]},
)
