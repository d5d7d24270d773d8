# The README's commands. Every target bootstraps first (idempotent, seconds when warm).
.PHONY: up stack smoke down test check bootstrap

up: stack smoke          ## bring the local stack up, then smoke-test it

stack:                   ## bootstrap + pulumi up --stack local + summary
	scripts/up

smoke:                   ## the smoke suite against the running stack
	scripts/bootstrap_env.sh .venv/bin/python -m tests.smoke --stack local

down:                    ## stop every service of the local stack
	scripts/down

test:                    ## bootstrap + the whole test suite
	scripts/test

check:                   ## the fast lane before a commit: lint + every test that needs no service
	scripts/check

bootstrap:               ## toolchain, venv, stack and secrets only
	scripts/bootstrap
