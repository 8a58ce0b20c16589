#!/usr/bin/python
"""Ansible module pki_bundle: see DOCUMENTATION."""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: pki_bundle
short_description: Keep a PEM bundle of a host's private key followed by its certificate
description:
  - Writes O(path) as the private key file O(private_key_path) followed by the certificate O(certificate),
    the layout of a PEM keystore (ZooKeeper's C(ssl.keyStore.type=PEM), for one).
  - The private key is read on the managed host and never leaves it: the module returns neither the key
    nor the bundle, and shows no diff.
  - The file is replaced atomically (a private temporary file gets owner, group and mode, then is renamed),
    and only when its content differs; owner, group and mode are kept like M(ansible.builtin.file) does.
author: devinfra
options:
  path:
    description: The bundle file to write.
    type: path
    required: true
  private_key_path:
    description: The PEM private key file that starts the bundle.
    type: path
    required: true
  certificate:
    description:
      - The PEM certificate (content, not a path) that follows the key. Passing the content lets check
        mode tell whether a certificate not written yet would change the bundle.
    type: str
    required: true
extends_documentation_fragment:
  - action_common_attributes
  - files
attributes:
  check_mode:
    support: full
    details:
      - Reports whether the bundle would change, without writing.
      - A missing private key counts as a change.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Bundle the host key and certificate for ZooKeeper's PEM keystore
  pki_bundle:
    path: "{{ pki_bundle_file }}"
    private_key_path: "{{ pki_key_file }}"
    certificate: "{{ signed.certificate }}"
    owner: root
    group: devinfra-tls
    mode: "0640"
"""

RETURN = r"""
path:
  description: The bundle file.
  returned: always
  type: str
  sample: /etc/devinfra/pki/host-bundle.pem
"""


def pem(text):
    """PEM text as bytes ending with exactly one newline."""
    data = text if isinstance(text, bytes) else text.encode("ascii")
    return data.rstrip(b"\n") + b"\n"


def read(path):
    """The file's bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_atomically(module, path, data):
    """Write data to path through a temporary file in the same directory.

    The temporary file is created private (0600) and gets the requested owner, group and mode before it
    is renamed over path, so the key is never readable by others, not even for a moment.
    """
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".pki_bundle.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        attributes = module.load_file_common_arguments(module.params, path=tmp)
        module.set_fs_attributes_if_different(attributes, True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "private_key_path": {"type": "path", "required": True},
            "certificate": {"type": "str", "required": True},
        },
        add_file_common_args=True,
        supports_check_mode=True,
    )
    path = module.params["path"]
    key = read(module.params["private_key_path"])
    if key is None:
        if module.check_mode:
            module.exit_json(changed=True, path=path)
        module.fail_json(msg=f"private key {module.params['private_key_path']} does not exist", path=path)
    certificate = module.params["certificate"]
    if "-----BEGIN CERTIFICATE-----" not in certificate:
        module.fail_json(msg="certificate is not a PEM certificate", path=path)

    wanted = pem(key) + pem(certificate)
    changed = read(path) != wanted
    if changed and not module.check_mode:
        write_atomically(module, path, wanted)
    if os.path.exists(path):
        file_args = module.load_file_common_arguments(module.params, path=path)
        changed = module.set_fs_attributes_if_different(file_args, changed)
    module.exit_json(changed=changed, path=path)


if __name__ == "__main__":
    main()
