# reviewscore: `make help` lists every target.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
MODEL ?= models/imdb-bilstm
INPUT ?= examples/reviews/
OUTPUT ?= out/scored
DATA ?=
BUNDLE ?= runs/bundle
ARCH ?= bilstm-pool
PRETRAIN ?=
TRAIN_ARGS ?=
OVERWRITE ?=
BEAM_ARGS ?=
# The public datasets as Parquet, where `make data` (reviewscore data) writes them.
IMDB ?= data/imdb
SST5 ?= data/sst5
# The committed default's recipe (docs/models.md).
DEFAULT_RECIPE := --vocab-size 30000 --freeze-embedding --epochs 15 --patience 3 --name imdb-bilstm \
	--teacher-ngram --teacher-seeds 1337,1,2 --distill-unlabelled $(IMDB)/unsup.parquet
# The committed five-class model's recipe (docs/models.md).
RT_CLASSES := negative,somewhat negative,neutral,somewhat positive,positive
RT_RECIPE := --arch bilstm-pool-short --treebank --expand-contractions --ordinal --freeze-embedding --ema 0.999 \
	--epochs 10 --patience 3 --name rt-sentiment5
BENCH_DATA ?= $(IMDB)/unsup.parquet
BENCH_SIZES ?= 1000,50000,800000
# Running on Dataflow (docs/production.md): the project, region and bucket. The job's image is pushed to
# REPOSITORY under TAG (the commit it was built from, -dirty with uncommitted changes: fixed once per make
# call), then named only by its digest, which `make image` records in IMAGE_FILE (not committed: it names
# this project's image). The template names that digest for the launcher and the workers; IMAGE=...@sha256:...
# names another image instead. deploy/flex_template.py reads and checks the reference.
PROJECT ?= $(shell gcloud config get-value project 2>/dev/null)
REGION ?= europe-west1
BUCKET ?=
REPOSITORY ?= $(REGION)-docker.pkg.dev/$(PROJECT)/reviewscore/scorer
ifndef TAG
TAG := $(shell git describe --always --dirty --abbrev=12 2>/dev/null)
endif
IMAGE_FILE ?= deploy/image.ref
IMAGE ?=
FLEX_TEMPLATE = $(PYTHON) deploy/flex_template.py
# The template's defaults for every launch: the account the launcher VM and workers run as (deploy/setup_gcp.sh
# creates it), where the launcher stages the job and the job writes temporary files (in BUCKET, where that
# account has its grant), and the VPC they join (empty: Dataflow's, the network named default).
SERVICE_ACCOUNT ?= reviewscore@$(PROJECT).iam.gserviceaccount.com
STAGING_LOCATION ?= gs://$(BUCKET)/staging
TEMP_LOCATION ?= gs://$(BUCKET)/tmp
NETWORK ?=
SUBNETWORK ?=
TEMPLATE ?= gs://$(BUCKET)/templates/reviewscore.json
# The lock the image is built with (the Dockerfile's LOCK build argument), for its rehearsal too.
IMAGE_LOCK ?= requirements.lock
WORKER_ENV = $(PYTHON) deploy/worker_env.py --lock $(IMAGE_LOCK)
# Reviews (Parquet with a text column) for the Dataflow rehearsal; empty: it writes 60,000 synthetic ones.
REHEARSAL_REVIEWS ?=
# The image is Beam's Python 3.11 SDK image on x86_64 Linux; the locks pin for exactly that.
LOCK := $(BIN)/uv pip compile pyproject.toml --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header --quiet

.DEFAULT_GOAL := help
.PHONY: schemas help install install-scoring lock test check lint data train train-default train-rt info score bench bench-smoke beam-image-pins worker-env rehearse-dataflow check-dag dag-files image image-record image-name image-docker \
	template metadata cli-reference docs clean

help: ## List every target.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "Variables: DATA=... PRETRAIN=... BUNDLE=... ARCH=... TRAIN_ARGS=... (train; IMDB=... SST5=... for data, train-default, train-rt); INPUT=... OUTPUT=... MODEL=... OVERWRITE=1 BEAM_ARGS=... (score)"

$(BIN)/.installed: pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install -r requirements-dev.lock
	$(BIN)/pip install --no-deps -e .
	@touch $@

# Scoring alone: pyproject's base dependencies (Beam, ONNX Runtime, pyarrow, pandas, numpy, typer, rich)
# at the versions the image runs, requirements.lock's, as constraints: no TensorFlow, no dev tools.
$(BIN)/.scoring: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install -c requirements.lock -e .
	@touch $@

# `make info` and `make score` run in either environment; where there is none they create the lean one.
SCORING_ENV = $(if $(wildcard $(BIN)/.installed),$(BIN)/.installed,$(BIN)/.scoring)

install: $(BIN)/.installed ## Create .venv and install reviewscore with its dev tools, at the versions in requirements-dev.lock.

install-scoring: $(BIN)/.scoring ## Create .venv with what scoring needs only (no TensorFlow, no dev tools), at the versions in requirements.lock.

lock: $(BIN)/.installed ## Re-pin dependencies after editing pyproject.toml: the image locks (without and with TensorFlow), requirements-dev.lock (make install) and the Airflow check's pins.
	$(LOCK) --extra gcp -o requirements.lock
	$(LOCK) --extra gcp --extra train -c requirements.lock -o requirements-tensorflow.lock
	$(LOCK) --extra dev -c requirements-tensorflow.lock -o requirements-dev.lock
	for pins in airflow-requirements airflow2-requirements; do \
		$(BIN)/uv pip compile deploy/$$pins.in --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
			--quiet -o deploy/$$pins.txt || exit 1; \
	done

test: $(BIN)/.installed ## The fast loop: every test not marked slow, one real DirectRunner run among them; needs no data outside the repository.
	$(BIN)/pytest -q -m "not slow"

# What CI runs (.ci/run), in this order: the benchmark's smoke run when BENCH_DATA is there, the DAG with real
# Airflow, the rehearsal of a Dataflow launch, the documentation site, and last the whole test suite, slow
# tests included, so its summary closes the log. BENCH_DATA=... REHEARSAL_REVIEWS=... reach the steps.
check: $(BIN)/.installed ## Everything CI runs: bench-smoke (when BENCH_DATA is there), check-dag, rehearse-dataflow, docs, then every test.
	$(if $(wildcard $(BENCH_DATA)),$(MAKE) bench-smoke,@echo "make check: no reviews at BENCH_DATA=$(BENCH_DATA), so no bench-smoke (make data, or BENCH_DATA=...)")
	$(MAKE) check-dag
	$(MAKE) rehearse-dataflow
	$(MAKE) docs
	$(BIN)/pytest -q

lint: $(BIN)/.installed ## Check style with ruff.
	$(BIN)/ruff check pipeline training schemas tests benchmarks deploy docs/hooks
	$(BIN)/ruff format --check pipeline training schemas tests benchmarks deploy docs/hooks

# A target that reads the public datasets first checks its files: $(call need-data,FILES,VARIABLES).
need-data = @for f in $(1); do test -f "$$f" || { echo "$$f is missing: run 'make data' first (or set $(2) to where the files are)" >&2; exit 2; }; done

data: $(IMDB)/unsup.parquet $(SST5)/sst5_phrases.parquet ## Download IMDB and SST-5 and convert them to Parquet in IMDB=data/imdb and SST5=data/sst5 (a dataset already there is kept).

$(IMDB)/unsup.parquet: | $(BIN)/.installed
	$(BIN)/reviewscore data imdb --to $(IMDB)

$(SST5)/sst5_phrases.parquet: | $(BIN)/.installed
	$(BIN)/reviewscore data sst5 --to $(SST5)

train: $(BIN)/.installed ## Train a bundle: make train DATA=aclImdb-or-parquet [PRETRAIN=unlabelled BUNDLE=dir ARCH=name TRAIN_ARGS=...].
	@test -n "$(DATA)" || (echo "usage: make train DATA=path/to/aclImdb-or-parquet [PRETRAIN=unlabelled] [BUNDLE=dir] [ARCH=name]" && exit 2)
	$(BIN)/reviewscore train --data $(DATA) --out $(BUNDLE) --arch $(ARCH) $(if $(PRETRAIN),--pretrain-vectors $(PRETRAIN)) $(TRAIN_ARGS)

train-default: $(BIN)/.installed ## Retrain the committed default (distilled) from IMDB=data/imdb (make data) into BUNDLE (about 90 min on 2 cores).
	$(call need-data,$(IMDB)/train.parquet $(IMDB)/unsup.parquet,IMDB)
	$(BIN)/reviewscore train --data $(IMDB)/train.parquet --pretrain-vectors $(IMDB)/unsup.parquet --out $(BUNDLE) $(DEFAULT_RECIPE) $(TRAIN_ARGS)

train-rt: $(BIN)/.installed ## Retrain the five-class model from SST5=data/sst5 (+ IMDB text for vectors; make data) into BUNDLE.
	$(call need-data,$(SST5)/sst5_phrases.parquet $(SST5)/sst5_train.parquet $(SST5)/sst5_dev.parquet \
		$(IMDB)/train.parquet $(IMDB)/unsup.parquet,SST5 and IMDB)
	$(BIN)/reviewscore train --data $(SST5)/sst5_phrases.parquet --data $(SST5)/sst5_train.parquet \
		--validation-data $(SST5)/sst5_dev.parquet --class-names "$(RT_CLASSES)" \
		--pretrain-vectors $(IMDB)/train.parquet --pretrain-vectors $(IMDB)/unsup.parquet \
		--out $(BUNDLE) $(RT_RECIPE) $(TRAIN_ARGS)

info: $(SCORING_ENV) ## Describe a bundle: make info [MODEL=models/imdb-bilstm].
	$(BIN)/reviewscore info $(MODEL)

# The CLI's messages name make's variables where they name a flag these stand for (OVERWRITE=1, not --overwrite).
score: $(SCORING_ENV) ## Score reviews: make score INPUT=reviews/ [OUTPUT=out/scored MODEL=... OVERWRITE=1 BEAM_ARGS="..."].
	REVIEWSCORE_CALLER_FLAGS='--overwrite=OVERWRITE=1 --model=MODEL= --output=OUTPUT=' \
	$(BIN)/reviewscore score $(INPUT) --output $(OUTPUT) --model $(MODEL) $(if $(OVERWRITE),--overwrite) $(if $(BEAM_ARGS),-- $(BEAM_ARGS))

# SHADOW_MODEL: the challenger whose cost bench measures (--shadow-model); unset, a copy of MODEL, which costs the same.
bench: $(BIN)/.installed ## Benchmark the tutorial way, each engine alone, the pipeline end to end, a challenger's cost and a bundle against the one it replaces: make bench [BENCH_DATA=... BENCH_SIZES=... SHADOW_MODEL=... PREVIOUS_MODEL=... BEAM_ARGS=...].
	$(call need-data,$(BENCH_DATA),BENCH_DATA)
	$(BIN)/python benchmarks/bench.py --data $(BENCH_DATA) --bundle $(MODEL) --sizes $(BENCH_SIZES) --skip-naive-above 50000 \
		--compare-size 50000 --out bench-results $(if $(SHADOW_MODEL),--shadow-bundle $(SHADOW_MODEL)) \
		$(if $(PREVIOUS_MODEL),--previous-bundle $(PREVIOUS_MODEL)) $(if $(BEAM_ARGS),--beam-args "$(BEAM_ARGS)")

bench-smoke: $(BIN)/.installed ## A tiny run of the benchmark (200 reviews), to check it works; no timing is judged.
	$(call need-data,$(BENCH_DATA),BENCH_DATA)
	$(BIN)/python benchmarks/bench.py --data $(BENCH_DATA) --bundle $(MODEL) --sizes 200 --compare-size 200 --explain-size 200 --sample-size 200 \
		--previous-bundle $(MODEL) --out bench-results/smoke

beam-image-pins: $(BIN)/.installed ## Re-pin deploy/beam_image_requirements.txt, the packages of the Beam SDK image the Dockerfile starts FROM.
	deploy/beam_image_pins.sh

worker-env: ## Build (cached) or refresh a Python 3.11 env installed exactly as the image is; prints its python [IMAGE_LOCK=...].
	$(WORKER_ENV)

rehearse-dataflow: $(BIN)/.installed ## Rehearse a Dataflow launch here: storage emulator, Beam's job service, workers in the image's environment [REHEARSAL_REVIEWS=...].
	worker=$$($(WORKER_ENV)) && \
		$(BIN)/python -m deploy.rehearsal --worker-python "$$worker" $(if $(REHEARSAL_REVIEWS),--reviews $(REHEARSAL_REVIEWS))

check-dag: $(BIN)/.installed ## Check the DAG with the real Airflow 2 and 3 and Google provider, deferrable or not (pinned, cached envs).
	PYTHON=$(PYTHON) UV=$(BIN)/uv deploy/check_airflow_dag.sh

DAGS ?= build/dags
dag-files: ## The DAG and the modules it imports, as they go into Airflow's dags/ folder [DAGS=build/dags].
	mkdir -p $(DAGS)
	cp deploy/airflow_dag.py $(DAGS)/reviewscore_nightly.py
	cp schemas/summary.py $(DAGS)/reviewscore_summary.py
	cp deploy/dag_policy.py $(DAGS)/reviewscore_policy.py
	cp deploy/dag_launch.py $(DAGS)/reviewscore_launch.py

# A target that works on the project and its bucket: $(call need-cloud,TARGET). The documentation's example
# names are refused, so a forgotten edit fails here rather than after a build.
need-cloud = @for v in "PROJECT=$(PROJECT)" "BUCKET=$(BUCKET)"; do case "$$v" in \
	*= | PROJECT=my-project | BUCKET=my-bucket | BUCKET=my-reviewscore-bucket) \
		echo "make $(1) needs $${v%%=*}=... naming your own (docs/production.md, 'Step by step')" >&2; exit 2 ;; esac; done
# Looks up what REPOSITORY:TAG points to and records it in IMAGE_FILE.
RECORD_IMAGE = digest=$$(gcloud artifacts docker images describe $(REPOSITORY):$(TAG) --project $(PROJECT) \
		--format='value(image_summary.digest)') && \
	$(FLEX_TEMPLATE) record --repository $(REPOSITORY) --tag $(TAG) --digest "$$digest" --file $(IMAGE_FILE)

image: ## Build the job's image on Cloud Build, check it, push it as REPOSITORY:TAG and record its digest (PROJECT=... REGION=... BUCKET=...).
	$(call need-cloud,image)
	$(FLEX_TEMPLATE) base-images
	gcloud builds submit --project $(PROJECT) --region $(REGION) --config deploy/cloudbuild.yaml \
		--gcs-source-staging-dir gs://$(BUCKET)/cloudbuild/source --substitutions _IMAGE=$(REPOSITORY):$(TAG) .
	$(RECORD_IMAGE)

image-record: ## Record the digest of an image already pushed as REPOSITORY:TAG in IMAGE_FILE (TAG=...).
	$(RECORD_IMAGE)

image-name: ## Print the job's image by digest (IMAGE, or the one IMAGE_FILE records), for --sdk_container_image.
	@$(FLEX_TEMPLATE) image --image "$(IMAGE)" --repository $(REPOSITORY) --file $(IMAGE_FILE)

image-docker: ## The same image with a local Docker engine: build, push as REPOSITORY:TAG, record its digest.
	$(FLEX_TEMPLATE) base-images
	docker build -f deploy/Dockerfile -t $(REPOSITORY):$(TAG) .
	docker push $(REPOSITORY):$(TAG)
	$(RECORD_IMAGE)

template: ## Write the Flex Template spec to TEMPLATE, naming the image by digest, its launch defaults and deploy/metadata.json (BUCKET=...).
	$(call need-cloud,template)
	$(FLEX_TEMPLATE) spec --image "$(IMAGE)" --repository $(REPOSITORY) --file $(IMAGE_FILE) --out build/template.json \
		--service-account-email $(SERVICE_ACCOUNT) --staging-location $(STAGING_LOCATION) --temp-location $(TEMP_LOCATION) \
		--network "$(NETWORK)" --subnetwork "$(SUBNETWORK)"
	gcloud storage cp build/template.json $(TEMPLATE) --project $(PROJECT)

metadata: $(BIN)/.installed ## Regenerate deploy/metadata.json from the job's options (pipeline/job/options.py).
	$(BIN)/python -m pipeline.job.options > deploy/metadata.json

schemas: $(BIN)/.installed ## Regenerate the JSON Schemas of _SUMMARY.json and manifest.json (schemas/*.schema.json) and their page (docs/reference/schemas.md) from their models.
	$(BIN)/python -m schemas.json_schemas

cli-reference: $(BIN)/.installed ## Regenerate docs/reference/cli.md from every command's --help.
	$(BIN)/python docs/hooks/cli_reference.py

docs: $(BIN)/.installed ## Build the documentation site into site/ (MkDocs, strict: a broken link or any warning fails it).
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-examples: $(BIN)/.installed ## Rerun the quick start and the documented snippets, and write what they print into README.md and docs/.
	$(BIN)/python docs/hooks/doc_examples.py

clean: ## Remove build leftovers and test caches (keeps .venv).
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
