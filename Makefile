# Portcullis: `make dev` runs the whole stack locally; `make test` runs every test against a fresh one.
# Everything installs on first use, pinned: a project-local venv (.local/venv) with moto and cargo-lambda;
# for the template checks and the arm64 build, AWS's own tools (.local/sam, local/tools/node_modules).

SHELL := /bin/bash
VENV := .local/venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The local tooling runs from the venv; cargo finds the `cargo-lambda` subcommand on this PATH.
LOCAL := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PYTHONPATH="$(CURDIR)/local" $(PY) -m portcullis_local
# `make token USER=viewer@demo.test`; the login name in $USER is not an email, so it means the admin.
TOKEN_USER := $(if $(findstring @,$(USER)),$(USER),admin@demo.test)
# Tests shorten the environment deadline so the failure path takes seconds, not half a minute, and allow
# one portal origin, which the CORS tests call from (tests/tests/cors.rs).
TEST_ENV := PORTCULLIS_ENV_DEADLINE_SECONDS=8 PORTCULLIS_CERT_DEADLINE_SECONDS=60 \
  PORTCULLIS_ALLOWED_ORIGINS=https://portal.test

# AWS's tools get a venv of their own (the SAM CLI pins boto3 and cfn-lint apart from moto's):
# local/tools/requirements.txt, the SAM CLI, cfn-lint and its serverless rules, for `make check-templates`;
# local/tools/requirements-zig.txt, zig (400 MB), only for the arm64 builds (`make sam-build`, `make package`).
SAM_VENV := .local/sam
SAM_STAMP := $(SAM_VENV)/.installed
ZIG_STAMP := $(SAM_VENV)/.installed-zig
# Schemathesis, for the contract run at the end of `make test`: a venv of its own (it wants a newer pytest
# than local/requirements.txt pins).
ST_VENV := .local/schemathesis
ST_STAMP := $(ST_VENV)/.installed
# asl-validator and Spectral, exactly as local/tools/package-lock.json says.
NODE_TOOLS := local/tools/node_modules
NODE_STAMP := $(NODE_TOOLS)/.installed
# No telemetry. No AWS account either: nothing here calls AWS (`sam validate --lint` is cfn-lint).
SAM := SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
# The arm64 builds: cargo finds `cargo lambda` in .local/venv, and cargo lambda finds zig as
# `python3 -m ziglang`, the first python3 on this PATH being .local/sam's.
BUILD_PATH := PATH="$(CURDIR)/$(SAM_VENV)/bin:$(CURDIR)/$(VENV)/bin:$$PATH"
ARM64 := aarch64-unknown-linux-gnu
FUNCTIONS := apps-api provisioner tenants-api users-api
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
LAMBDA_DIR := $(TARGET_DIR)/lambda

.PHONY: dev test token build tools lint fmt clean check-templates sam-build package load bench

## dev: bring up the emulator, the functions and the API at http://127.0.0.1:4000 (Ctrl-C stops all)
dev: tools build
	@$(LOCAL) dev

## test: the template checks, unit tests, the local stack's own tests, then black-box tests and Schemathesis's
## run of openapi.yaml (local/schemathesis.toml) against one fresh stack
test: tools $(ST_STAMP) check-templates
	cargo build --workspace --all-targets --locked
	$(PY) -m pytest local/tests -q
	cargo test --workspace --lib --bins --locked
	cargo test --locked -p hello --test cold_start
	$(TEST_ENV) $(LOCAL) test-run -- $(SHELL) -c \
	  'cargo test --locked -p portcullis-e2e --tests && $(PY) -m portcullis_local fuzz'
	$(LOCAL) iam-check --calls target/iam/calls.json --template infra/template.yaml

## load: a bounded load run on a fresh stack: 200 concurrent readers and 50 concurrent writers for 30 s
## (tests/examples/load.rs; LOAD_ARGS="--seconds 60 …" to change); fails on any 5xx. Figures: docs/reliability.md
LOAD_ARGS ?= --readers 200 --writers 50 --seconds 30
load: tools build
	cargo build --locked -p portcullis-e2e --example load
	$(TEST_ENV) $(LOCAL) test-run -- cargo run --locked -q -p portcullis-e2e --example load -- $(LOAD_ARGS)

## bench: cold start, warm overhead, token verification, binary size, memory and workflow cost, side by
## side (bench/): the arm64 release builds sized, the host release builds started against a Runtime API
## stand-in beside a fresh stack. Figures in target/bench/results.json and a table; method and budgets in
## docs/performance.md. Slow (release builds): not part of `make test`. BENCH_ARGS="--starts 40" to change.
BENCH_ARGS ?=
bench: tools build $(ZIG_STAMP)
	rustup target add $(ARM64)
	$(BUILD_PATH) cargo lambda build --release --arm64 --locked $(addprefix --package ,$(FUNCTIONS))
	$(BUILD_PATH) cargo lambda build --release --arm64 --locked --package hello
	cargo build --release --locked $(addprefix --package ,$(FUNCTIONS)) --package hello
	cargo build --release --locked --package portcullis-bench
	cargo bench --locked -p portcullis-bench --no-run
	$(LOCAL) test-run -- $(SHELL) -c 'cargo bench --locked -q -p portcullis-bench --bench token_verification \
	  -- --noplot && $(TARGET_DIR)/release/portcullis-bench --binaries $(TARGET_DIR)/release \
	  --lambda-dir $(LAMBDA_DIR) --criterion-dir $(TARGET_DIR)/criterion --out $(TARGET_DIR)/bench/results.json $(BENCH_ARGS)'

## token: print an ID token for admin@demo.test (or USER=…) of the running `make dev` stack
token: tools
	@$(LOCAL) token --user $(TOKEN_USER)

## lint: formatting and clippy, warnings as errors
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

build:
	cargo build --workspace --bins --locked

## check-templates: AWS's own checks of infra/template.yaml, statemachine/*.asl.json and openapi.yaml; any
## finding fails. What each switches off, and why: .cfnlintrc.yaml, .spectral.yaml. Offline, a few seconds.
check-templates: $(SAM_STAMP) $(NODE_STAMP)
	$(SAM_VENV)/bin/cfn-lint --non-zero-exit-code informational
	$(SAM) validate --lint --template-file infra/template.yaml
	PYTHONPATH=local $(SAM_VENV)/bin/python -m portcullis_local.template translate
# cfn-lint again on the translation: only there does it check the IAM policies' action names (W3037).
# WS1003 is off in infra/template.yaml's two functions' Metadata, which the roles do not inherit.
	$(SAM_VENV)/bin/cfn-lint --non-zero-exit-code informational --merge-configs --ignore-checks WS1003 \
	  -- target/template.translated.json
	$(NODE_TOOLS)/.bin/asl-validator $(addprefix --json-path ,$(wildcard statemachine/*.asl.json))
	$(NODE_TOOLS)/.bin/spectral lint --quiet --fail-severity hint openapi.yaml

## sam-build: `sam build` with the pinned SAM CLI (each function: cargo lambda build --release --arm64);
## then `.local/sam/bin/sam deploy --guided` (docs/deploying.md). Slow: not part of `make test`.
sam-build: tools $(SAM_STAMP) $(ZIG_STAMP)
	rustup target add $(ARM64)
	$(BUILD_PATH) $(SAM) build

## package: the same binaries without SAM's build, into $(LAMBDA_DIR)/<function>/bootstrap, and
## $(LAMBDA_DIR)/template.yaml pointing at them (for `sam deploy --template-file`). Slow: not part of `make test`.
package: tools $(ZIG_STAMP)
	rustup target add $(ARM64)
	$(BUILD_PATH) cargo lambda build --release --arm64 --locked $(addprefix --package ,$(FUNCTIONS))
	PYTHONPATH=local $(PY) -m portcullis_local.template package --lambda-dir $(LAMBDA_DIR)
	@ls -l $(foreach f,$(FUNCTIONS),$(LAMBDA_DIR)/$(f)/bootstrap)

tools: $(STAMP)

$(STAMP): local/requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r local/requirements.txt
	touch $@

$(SAM_STAMP): local/tools/requirements.txt
	test -x $(SAM_VENV)/bin/python || python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r local/tools/requirements.txt
	touch $@

$(ST_STAMP): local/tools/requirements-schemathesis.txt
	test -x $(ST_VENV)/bin/python || python3 -m venv $(ST_VENV)
	$(ST_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r local/tools/requirements-schemathesis.txt
	touch $@

$(ZIG_STAMP): local/tools/requirements-zig.txt
	test -x $(SAM_VENV)/bin/python || python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r local/tools/requirements-zig.txt
	touch $@

# No install scripts: none of these needs one (the only one is @scarf/scarf's, a download counter that calls home).
$(NODE_STAMP): local/tools/package.json local/tools/package-lock.json
	cd local/tools && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

fmt:
	cargo fmt --all

clean:
	rm -rf .local target $(NODE_TOOLS) .aws-sam
