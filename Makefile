# The two commands: `make run` and `make test`. Everything else is a helper of those.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
PYTEST_ARGS ?=
## The suite's passes run in TEST_WORKERS processes (pytest-xdist), each test file whole in
## one of them (its tests may build on each other); TEST_WORKERS=0 runs them in this one.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadfile

.PHONY: run test test-sqlite test-postgres test-s3 lint format migrate clean bench bench-large bench-soak bench-render chromium hub-proxy axe-core gettext messages ngshare

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-run: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.installed-run

migrate: $(VENV)/.installed-run
	$(BIN)/python manage.py migrate --noinput

## make run: the service on the embedded default (SQLite + files under data/), 127.0.0.1:8000
run: migrate
	$(BIN)/python manage.py collectstatic --noinput -v0
	@echo "Serving on http://$(HOST):$(PORT)/ (admin: /admin/, health: /healthz)."
	@echo "Create an admin with: $(BIN)/python manage.py createsuperuser"
	$(BIN)/gunicorn exchange_site.wsgi --bind $(HOST):$(PORT) --workers $(WORKERS) --threads 4 \
		--worker-class exchange_site.gunicorn_worker.BalancedThreadWorker \
		--timeout 300 --keep-alive 75 --access-logfile -

## make test: lint, then the suite on SQLite with coverage, then on a throwaway PostgreSQL
test: $(VENV)/.installed-dev lint chromium hub-proxy axe-core gettext ngshare test-sqlite test-postgres test-s3

## Debian's Chromium for the browser tests (tests/lab); Playwright never downloads a browser.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && apt-get install -y -q chromium; \
	else echo "Install Debian's chromium package to run the browser tests (tests/lab)."; fi

## JupyterHub's proxy (npm configurable-http-proxy) in ./node_modules for the hub tests.
CHP_VERSION ?= 5.3.0
hub-proxy: node_modules/.bin/configurable-http-proxy
node_modules/.bin/configurable-http-proxy:
	@if ! command -v npm >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && apt-get install -y -q nodejs npm; fi
	@version=$(CHP_VERSION); \
	if [ "$$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then version=4.6.3; fi; \
	npm install --no-save --no-audit --no-fund --loglevel=error configurable-http-proxy@$$version

## axe-core (npm) in ./node_modules for the accessibility test (tests/test_accessibility.py).
## Unpacked from its tarball (it has no dependencies): `npm install --no-save` would remove
## the hub proxy installed above, which is not in a package.json either.
AXE_VERSION ?= 4.10.3
axe-core: node_modules/axe-core/axe.min.js
node_modules/axe-core/axe.min.js: | node_modules/.bin/configurable-http-proxy
	@mkdir -p build/axe node_modules/axe-core
	cd build/axe && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null
	tar -xzf build/axe/axe-core-$(AXE_VERSION).tgz -C node_modules/axe-core --strip-components=1
	test -f $@ && touch $@

## ngshare 0.6.0 from PyPI in its own virtualenv (with the SQLAlchemy<2 it needs), for the
## import test (courses/tests/test_import_ngshare.py); cached under build/.
NGSHARE_VENV ?= build/ngshare-venv
ngshare: $(NGSHARE_VENV)/.installed
$(NGSHARE_VENV)/.installed:
	rm -rf $(NGSHARE_VENV)
	$(PYTHON) -m venv $(NGSHARE_VENV)
	$(NGSHARE_VENV)/bin/pip install -q "ngshare==0.6.0" "SQLAlchemy<2"
	touch $@

## gettext (msgfmt) to check the translations; the compiled .mo files are committed.
gettext:
	@if command -v msgfmt >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && apt-get install -y -q gettext; \
	else echo "Install gettext to check the translations."; fi

## make messages: collect the pages' strings into locale/*/django.po and compile them
messages: $(VENV)/.installed-dev gettext
	$(BIN)/python manage.py makemessages -l es --no-location --ignore "node_modules/*" \
		--ignore "test-artifacts/*" --ignore "staticfiles/*" --ignore "data/*" --ignore "bench/*"
	$(BIN)/python manage.py compilemessages -l es

## make lint: formatting, ruff's rules, and the import layers (docs/architecture.md)
lint: $(VENV)/.installed-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test-sqlite: $(VENV)/.installed-dev
	$(BIN)/pytest $(XDIST) --cov --cov-branch --cov-report=term-missing:skip-covered \
		--cov-fail-under=95 --durations=25 $(PYTEST_ARGS)

test-postgres: $(VENV)/.installed-dev
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
		echo "PostgreSQL is not installed: install postgresql-15 to run the suite on it."; exit 1; fi
	@dir=$$(mktemp -d); chmod 755 $$dir; \
	url=$$(scripts/throwaway-postgres start $$dir/pg) || { cat $$dir/pg/*.log; exit 1; }; \
	echo "PostgreSQL suite against $$url"; \
	DATABASE_URL=$$url $(BIN)/pytest $(XDIST) -m "not sqlite_only" -p no:cacheprovider \
		$(PYTEST_ARGS); \
	status=$$?; scripts/throwaway-postgres stop $$dir/pg; rm -rf $$dir; exit $$status

## make test-s3: the storage-facing tests (marker `storage`) again, files on SeaweedFS S3
test-s3: $(VENV)/.installed-dev
	EXCHANGE_TEST_STORAGE=s3 $(BIN)/pytest -m storage -p no:cacheprovider $(PYTEST_ARGS)

## make bench: the deadline rush (bench/rush.py) on a throwaway PostgreSQL; figures in bench/RESULTS.md
BENCH_STUDENTS ?= 500
BENCH_CONCURRENCY ?= 32
bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench.rush --students $(BENCH_STUDENTS) --concurrency $(BENCH_CONCURRENCY) \
		--json bench/out/rush.json

## make bench-large: one 1 GiB file up and down, and one byte over the limit (bench/large.py)
bench-large: $(VENV)/.installed-dev
	$(BIN)/python -m bench.large --json bench/out/large.json

## make bench-soak: a steady rate for SOAK_MINUTES (default 10) minutes (bench/soak.py); not for CI
SOAK_MINUTES ?= 10
SOAK_RATE ?= 5
bench-soak: $(VENV)/.installed-dev
	$(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES) --rate $(SOAK_RATE) \
		--json bench/out/soak.json

## make bench-render: eight concurrent views of a 4 MiB notebook while the API is used (bench/render.py)
RENDER_VIEWERS ?= 8
bench-render: $(VENV)/.installed-dev
	$(BIN)/python -m bench.render --viewers $(RENDER_VIEWERS) --notebook-mib 4 \
		--json bench/out/render.json

clean:
	rm -rf $(VENV) .pytest_cache .coverage htmlcov

.PHONY: demo check-plugin-install

## make demo: the whole nbgrader cycle (release ... fetch_feedback) over a throwaway service,
## with the real nbgrader CLI, an instructor and two students each in their own HOME
demo: $(VENV)/.installed-dev
	$(BIN)/python scripts/demo.py

## make check-plugin-install: the plugin installs alone in a fresh virtualenv (nbgrader and
## requests, never Django); redone only when the plugin or pyproject.toml change
PLUGIN_VENV ?= build/plugin-venv
check-plugin-install: $(PLUGIN_VENV)/.checked

$(PLUGIN_VENV)/.checked: pyproject.toml $(wildcard nbgrader_exchange/*.py)
	rm -rf $(PLUGIN_VENV)
	$(PYTHON) -m venv $(PLUGIN_VENV)
	$(PLUGIN_VENV)/bin/pip install -q .
	cd / && $(CURDIR)/$(PLUGIN_VENV)/bin/python -c "import nbgrader_exchange.list, nbgrader_exchange.submit; print('nbgrader_exchange imports')"
	cd / && if $(CURDIR)/$(PLUGIN_VENV)/bin/python -c "import django" 2>/dev/null; then \
		echo "Django is installed alongside the plugin: it must not be"; exit 1; \
	else echo "django is not installed: good"; fi
	cd / && installed=$$($(CURDIR)/$(PLUGIN_VENV)/bin/python -c "import nbgrader_exchange as p; print(p.__version__)") \
		&& [ "$$installed" = "$(VERSION)" ] && echo "nbgrader_exchange $$installed" \
		|| { echo "the installed plugin says version $$installed, pyproject.toml $(VERSION)"; exit 1; }
	touch $@

.PHONY: image test-image dist

## The project's one version (pyproject.toml): the image's tag, the wheel's, the chart's.
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
IMAGE ?= localhost/nbgrader-exchange
## The image's base: built from Debian's packages with debootstrap (scripts/image/base), kept in
## build/image-base/ so that later builds skip it. `make image IMAGE_BASE=python:3.11-slim`
## builds on the official Python image instead (the Dockerfile's own default).
DEBOOTSTRAP_BASE := localhost/nbgrader-exchange-base:bookworm
IMAGE_BASE ?= $(DEBOOTSTRAP_BASE)
IMAGE_BASE_TAR ?= build/image-base/bookworm-python3.tar

## make image: the server image with podman, tagged $(IMAGE):$(VERSION) (docs/release.md)
image:
	@if [ "$(IMAGE_BASE)" = "$(DEBOOTSTRAP_BASE)" ]; then \
		scripts/image/base $(IMAGE_BASE_TAR) $(IMAGE_BASE); fi
	scripts/image/build $(IMAGE):$(VERSION) $(VERSION) $(IMAGE_BASE)

## make test-image: that image run as the chart's pod (tests/image), a whole exchange cycle
test-image: $(VENV)/.installed-dev image
	EXCHANGE_TEST_IMAGE=$(IMAGE) $(BIN)/pytest tests/image -p no:cacheprovider -v $(PYTEST_ARGS)

## make dist: the plugin's wheel and sdist, the image as a tarball, the chart, into dist/
dist: $(VENV)/.installed-dev image
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	scripts/image/podman save --format docker-archive --output dist/nbgrader-exchange-image-$(VERSION).tar \
		$(IMAGE):$(VERSION)
	gzip -1 dist/nbgrader-exchange-image-$(VERSION).tar
	$(BIN)/python scripts/package_chart.py --version $(VERSION) dist
	cd dist && sha256sum * > SHA256SUMS && ls -l
