# Targets for the local all-in-one environment (see the README section "Local environment").
# The top-level Makefile includes this file.

FERRY_ENV_SCRIPT := hack/env.sh
FERRY_RUN_SCRIPT := hack/run.sh
E2E_OUTPUT_DIR ?= $(CURDIR)/e2e/out

.PHONY: env-up env-down env-status env-logs env env-clean e2e run stop

## env-up: build or reuse the components and start the local environment
env-up:
	@$(FERRY_ENV_SCRIPT) up

## env-down: stop the local environment and undo its host changes
env-down:
	@$(FERRY_ENV_SCRIPT) down

## env-status: show each component's state, PID, memory and address
env-status:
	@$(FERRY_ENV_SCRIPT) status

## env-logs: show component logs (COMPONENT=kubelet for one, FOLLOW=1 to follow)
env-logs:
	@$(FERRY_ENV_SCRIPT) logs $(COMPONENT) $(if $(FOLLOW),-f)

## env: print export lines; use as: eval "$$(make -s env)"
env:
	@$(FERRY_ENV_SCRIPT) env

## env-clean: stop the environment and delete its state and database
env-clean:
	@$(FERRY_ENV_SCRIPT) clean

## e2e: run the end-to-end suite against the local environment (starts it if needed).
## Packages run one at a time (-p 1) because staging and apps share the node's two
## cores; each test's Ferry has its own installation name, so it leaves others' objects alone.
e2e:
	mkdir -p $(E2E_OUTPUT_DIR)
	go test -p 1 -tags e2e ./e2e/... -count=1 -timeout 60m -artifacts -outputdir=$(E2E_OUTPUT_DIR) $(E2E_FLAGS)

## run: start the environment plus `ferry serve` in the background
run:
	@$(FERRY_RUN_SCRIPT) start

## stop: stop `ferry serve` (make env-down stops the environment)
stop:
	@$(FERRY_RUN_SCRIPT) stop
