# Portcullis: `make dev` runs the whole stack locally; `make test` runs every test against a fresh one.
# Everything installs on first use, pinned: a project-local venv (.local/venv) with moto and cargo-lambda.

SHELL := /bin/bash
VENV := .local/venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The local tooling runs from the venv; cargo finds the `cargo-lambda` subcommand on this PATH.
LOCAL := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PYTHONPATH="$(CURDIR)/local" $(PY) -m portcullis_local
# `make token USER=viewer@demo.test`; the login name in $USER is not an email, so it means the admin.
TOKEN_USER := $(if $(findstring @,$(USER)),$(USER),admin@demo.test)
# Tests shorten the environment deadline so the failure path takes seconds, not half a minute.
TEST_ENV := PORTCULLIS_ENV_DEADLINE_SECONDS=8 PORTCULLIS_CERT_DEADLINE_SECONDS=60

.PHONY: dev test token build tools lint fmt clean

## dev: bring up the emulator, the functions and the API at http://127.0.0.1:4000 (Ctrl-C stops all)
dev: tools build
	@$(LOCAL) dev

## test: unit tests, the local stack's own tests, then black-box tests against a fresh stack
test: tools
	cargo build --workspace --all-targets --locked
	$(PY) -m pytest local/tests -q
	cargo test --workspace --lib --bins --locked
	$(TEST_ENV) $(LOCAL) test-run -- cargo test --locked -p portcullis-e2e --tests
	$(LOCAL) iam-check --calls target/iam/calls.json --template infra/template.yaml

## token: print an ID token for admin@demo.test (or USER=…) of the running `make dev` stack
token: tools
	@$(LOCAL) token --user $(TOKEN_USER)

## lint: formatting and clippy, warnings as errors
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

build:
	cargo build --workspace --bins --locked

tools: $(STAMP)

$(STAMP): local/requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r local/requirements.txt
	touch $@

fmt:
	cargo fmt --all

clean:
	rm -rf .local target
