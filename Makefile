# devinfra: two commands on a fresh Debian 12 machine, as root:
#   make aio    deploy the platform on local containers
#   make test   run every check
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# When make started: the test runner's budget line counts the bootstrap too.
export DEVINFRA_MAKE_STARTED := $(shell date +%s)
RUN_TESTS := $(VENV)/bin/python tools/run-tests.py
AIO_INVENTORY := inventory/aio/hosts.yaml
# The AIO converges with mitogen (plugins/strategy/, bench/bench_connection.py);
# AIO_STRATEGY=linear runs Ansible's own strategy.
AIO_STRATEGY ?= mitogen_linear

.PHONY: help venv docker image test check lint unit molecule aio aio-test aio-down bench clean docs

help:
	@echo "make aio       deploy every service on local containers (inventory/aio)"
	@echo "make aio-down  remove the AIO containers"
	@echo "make test      lint, unit tests, every molecule scenario and the AIO loop test"
	@echo "make check     lint, unit tests and the scenarios your uncommitted changes affect"
	@echo "make aio-test  the AIO loop test alone (merge a commit, watch the AIO deploy it)"
	@echo "make bench     benchmarks"
	@echo "make venv | docker | image   the bootstrap steps alone"

# The Python toolchain: rebuilt when its pins change.
$(VENV)/.installed: requirements-dev.txt constraints.txt setup.cfg pyproject.toml
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

venv: $(VENV)/.installed

docker:
	@tools/ensure-docker.sh

image: docker
	@tools/build-image.sh

test: venv image
	@$(RUN_TESTS)

# The developer's fast path: the scenarios zuul.d's check jobs would run for
# the working tree's changes (none when nothing changed).
check: venv image
	@$(RUN_TESTS) --changed

lint unit: venv
	@$(RUN_TESTS) $@

molecule: venv image
	@$(RUN_TESTS) $@

# The AIO closing the loop (tests/aio): merges commits into the AIO's clone
# of this repository and checks that its Zuul deploys them.
aio-test: venv
	@$(RUN_TESTS) aio

bench: venv
	@tools/run-bench.sh

# The roles' README variable tables, from their meta/argument_specs.yaml.
docs: venv
	@$(VENV)/bin/python tools/role-docs.py

$(CURDIR)/.cache/aio/id_ed25519:
	@mkdir -p $(@D)
	ssh-keygen -q -t ed25519 -N '' -C aio-admin@devinfra -f $@

# The AIO review server's two users (alice, a core reviewer; bob, a
# contributor) push with these keys; Zuul's deploy job logs in to the
# bastion with bastion_ci's.
$(CURDIR)/.cache/aio/%_ed25519:
	@mkdir -p $(@D)
	ssh-keygen -q -t ed25519 -N '' -C $*@devinfra-aio -f $@

# Each backup client's key for the AIO's backup server (inventory/aio/group_vars/backup_client.yaml).
AIO_BACKUP_KEYS := $(foreach host,bastion01 zuul01 etherpad01 review01,$(CURDIR)/.cache/aio/backup-$(host)_ed25519)

aio: venv image $(CURDIR)/.cache/aio/id_ed25519 $(CURDIR)/.cache/aio/alice_ed25519 $(CURDIR)/.cache/aio/bob_ed25519 \
     $(CURDIR)/.cache/aio/bastion_ci_ed25519 $(AIO_BACKUP_KEYS)
	devinfra hosts create --set aio --mirror "" --inventory $(AIO_INVENTORY)
	ANSIBLE_STRATEGY=$(AIO_STRATEGY) ansible-playbook -i inventory/aio playbooks/site.yaml
	@# The AIO's Zuul holds a clone of this repository and deploys what is
	@# merged there; HEAD is merged into it.
	tools/aio-push.sh HEAD
	@tools/aio-urls.sh

aio-down: venv
	devinfra hosts destroy --set aio
	rm -rf .cache/facts

clean: aio-down
	rm -rf $(VENV) .cache .artifacts
