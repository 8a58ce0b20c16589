"""devinfra/services.py on small trees: the manifest's shape, the plays, the derived roles and plugins."""

import textwrap
from pathlib import Path

import pytest

from devinfra import services


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


MANIFEST = """\
    shared: {deploy: [inventory/base/], molecule: [molecule/shared/]}
    services:
      - name: web
        playbook: service-web.yaml
        deploy_job: deploy-web
        groups: [web, db]
        roles: [pki, {postgresql: [db]}, {webfront: [web]}]
        check_play: true
        after: []
        scenarios: [web]
        follows: [data/*.yaml]
    scenarios:
      web: {job: molecule-web, roles: [webfront]}
    roles_without_scenario: []
    """


def test_a_manifest_is_read_with_each_roles_groups(tmp_path):
    m = services.load(write(tmp_path, {"services.yaml": MANIFEST}))
    web = m.services["web"]
    assert web.roles == {"pki": ("web", "db"), "postgresql": ("db",), "webfront": ("web",)}
    assert (web.playbook_path, web.site) == ("playbooks/service-web.yaml", True)
    assert web.follows == ("data/*.yaml",)
    assert m.scenarios["web"].services == ()
    assert (m.shared_deploy, m.shared_molecule) == (("inventory/base/",), ("molecule/shared/",))


@pytest.mark.parametrize(("change", "message"), [
    (("check_play: true", "check_play: yes please"),
     "services[0] (web): check_play must be a bool, not str 'yes please'"),
    (("        after: []\n", ""), "services[0] (web): missing after"),
    (("        after: []\n", "        after: []\n        needs: [x]\n"),
     "services[0] (web): unknown key(s) needs (known: name, playbook, deploy_job, groups, roles, "
     "check_play, after, scenarios, site, group_vars_also, follows)"),
    (("after: []", "after: [db]"),
     "services[0] (web): after: db is not a service listed before it (the list is in deploy order)"),
    (("scenarios: [web]", "scenarios: [nope]"), "services[0] (web): scenarios: nope is not under scenarios:"),
    (("{webfront: [web]}", "{webfront: [mail]}"),
     "services[0] (web): role webfront is applied to mail, not all of them groups of the service (web, db)"),
    (("[pki, ", "[pki, pki, "), "services[0] (web): role pki is listed twice"),
    (("follows: [data/*.yaml]", "follows: [data/, data/]"),
     "services[0] (web): follows lists an entry twice: ['data/', 'data/']"),
    (("roles: [webfront]}", "roles: [webfront], services: [mail]}"),
     "scenario web: services: mail is not a service"),
])
def test_a_malformed_manifest_is_named_with_the_entry_and_key(tmp_path, change, message):
    old, new = change
    write(tmp_path, {"services.yaml": MANIFEST.replace(old, new)})
    with pytest.raises(services.ServicesError) as exc:
        services.load(tmp_path)
    assert str(exc.value) == f"{tmp_path / 'services.yaml'}: {message}"


def test_an_unreadable_manifest_names_the_file(tmp_path):
    write(tmp_path, {"services.yaml": "services: [unclosed\n"})
    with pytest.raises(services.ServicesError, match=r"services\.yaml: not valid YAML: line 2"):
        services.load(tmp_path)


PLAYBOOK = """\
    - name: Check the variables
      hosts: "web:db:!disabled"
      gather_facts: false
      tasks:
        - name: Check pki
          ansible.builtin.include_role: {name: pki, tasks_from: validate}
        - name: Check postgresql
          ansible.builtin.include_role: {name: postgresql, tasks_from: validate.yaml}
          when: inventory_hostname in groups['db'] | default([])
    - name: Deploy
      hosts: "web:db:!disabled"
      roles:
        - role: pki
        - role: postgresql
          when: inventory_hostname in groups['db']
        - webfront
      tasks:
        - block:
            - name: Register for backups
              ansible.builtin.include_role: {name: backup_client, tasks_from: source.yaml}
    - name: Everything else
      ansible.builtin.import_playbook: other.yaml
    - name: Templated hosts
      hosts: "{{ some_hosts | default('all') }}:!disabled"
      tasks: []
    """


def test_plays_say_which_roles_go_to_which_groups_and_which_play_checks(tmp_path):
    write(tmp_path, {"playbooks/p.yaml": PLAYBOOK})
    check, deploy, imported, templated = services.plays(tmp_path, "playbooks/p.yaml")
    assert check.is_check and not deploy.is_check
    assert check.validates == {"pki": ("web", "db"), "postgresql": ("db",)}
    assert deploy.roles == {"pki": ("web", "db"), "postgresql": ("db",), "webfront": ("web", "db"),
                            "backup_client": ("web", "db")}
    assert imported.imports == ("playbooks/other.yaml",)
    assert templated.groups == ("all",)


def test_a_play_that_also_applies_a_role_is_no_check_play(tmp_path):
    write(tmp_path, {"p.yaml": """\
        - hosts: all
          tasks:
            - ansible.builtin.include_role: {name: pki, tasks_from: validate}
            - ansible.builtin.debug: {msg: changes}
        """})
    assert not services.plays(tmp_path, "p.yaml")[0].is_check


def test_the_roles_a_role_includes_are_followed_to_the_end(tmp_path):
    write(tmp_path, {
        "roles/gerrit/tasks/main.yaml": "- ansible.builtin.import_tasks: backup.yaml\n",
        "roles/gerrit/tasks/backup.yaml": "- ansible.builtin.include_role: {name: backup_client}\n",
        "roles/backup_client/tasks/main.yaml": "- ansible.builtin.debug: {msg: x}\n",
        "roles/backup_client/meta/main.yaml": "dependencies: [{role: common}]\n",
        "roles/common/tasks/main.yaml": "- ansible.builtin.debug: {msg: x}\n",
    })
    assert services.role_closure(tmp_path, ("gerrit",)) == {
        "gerrit": "role gerrit",
        "backup_client": "role backup_client (which role gerrit includes)",
        "common": "role common (which role backup_client includes)",
    }


def test_the_filters_and_modules_a_file_uses_are_found_with_their_module_utils(tmp_path):
    write(tmp_path, {
        "plugins/filter/pki.py": """\
            class FilterModule:
                def filters(self):
                    return {"devinfra_pki_check": print, "devinfra_pki_other": print}
            """,
        "library/gerrit_group.py": "from ansible.module_utils.gerrit import api\n",
        "plugins/module_utils/gerrit.py": "api = None\n",
        "roles/pki/tasks/main.yaml": """\
            - name: Check
              ansible.builtin.assert:
                that: "{{ x | devinfra_pki_check }}"
            - block:
                - gerrit_group: {name: admins}
            """,
        # A variable named like a module, outside a task list, is no use of it.
        "roles/pki/defaults/main.yaml": "gerrit_group: admins\n",
        "roles/pki/templates/x.j2": "{{ y|devinfra_pki_other }}\n",
    })
    files = ["roles/pki/tasks/main.yaml", "roles/pki/defaults/main.yaml", "roles/pki/templates/x.j2"]
    assert services.plugins_used(tmp_path, files) == {
        "plugins/filter/pki.py": "filter devinfra_pki_check, used by roles/pki/tasks/main.yaml",
        "library/gerrit_group.py": "module gerrit_group, used by roles/pki/tasks/main.yaml",
        "plugins/module_utils/gerrit.py": "module gerrit_group, used by roles/pki/tasks/main.yaml",
    }


@pytest.mark.parametrize(("pattern", "path", "expected"), [
    ("roles/pki/", "roles/pki/tasks/main.yaml", True),
    ("roles/pki/", "roles/pki_extra/tasks/main.yaml", False),
    ("library/gerrit_*", "library/gerrit_group.py", True),
    ("requirements*.txt", "requirements-dev.txt", True),
    ("requirements*.txt", "requirements.yml", False),
    ("inventory/*/group_vars/all/monitoring.yaml", "inventory/aio/group_vars/all/monitoring.yaml", True),
    ("Makefile", "Makefile.old", False),
])
def test_manifest_paths_are_directories_or_globs(pattern, path, expected):
    assert services.matches(pattern, path) is expected


def test_a_service_is_its_playbook_roles_group_vars_plugins_and_follows(tmp_path):
    write(tmp_path, {
        "services.yaml": MANIFEST,
        "roles/pki/tasks/main.yaml": "- ansible.builtin.include_role: {name: backup_client}\n",
        "roles/pki/README.md": "{{ x | devinfra_pki_check }} in a README is no use\n",
        "plugins/filter/pki.py": ("class FilterModule:\n    def filters(self):\n"
                                  "        return {'devinfra_pki_check': 1}\n"),
        "inventory/service/group_vars/db.yaml": "x: \"{{ y | devinfra_pki_check }}\"\n",
    })
    m = services.load(tmp_path)
    why = services.why(services.service_parts(tmp_path, m, m.services["web"]))
    assert why("playbooks/service-web.yaml") == "its playbook"
    assert why("roles/backup_client/tasks/main.yaml") == "role backup_client (which role pki includes)"
    assert why("inventory/aio/group_vars/web/10-aio.yaml") == "the group vars of its group web"
    assert why("plugins/filter/pki.py") == ("filter devinfra_pki_check, used by "
                                            "inventory/service/group_vars/db.yaml")
    assert why("data/x.yaml") == "follows in services.yaml"
    assert why("inventory/base/hosts.yaml") == "shared: every deploy job follows it"
    assert why("roles/etherpad/tasks/main.yaml") is None
    assert why("inventory/service/group_vars/mail.yaml") is None
