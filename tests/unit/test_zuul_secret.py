"""plugins/filter/zuul_secret.py: secrets Zuul itself can decrypt."""

import os
import subprocess

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from zuul_secret import FilterModule, zuul_secret

KEY = rsa.generate_private_key(public_exponent=65537, key_size=4096)
PUBLIC = KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode()
PRIVATE_KEY_TEXT = ("-----BEGIN OPENSSH PRIVATE KEY-----\n" + "x" * 1200
                    + "\n-----END OPENSSH PRIVATE KEY-----\n")


class Encrypted(list):
    pass


class Loader(yaml.SafeLoader):
    pass


Loader.add_constructor("!encrypted/pkcs1-oaep",
                       lambda loader, node: Encrypted(loader.construct_sequence(node)))


def decrypt(chunks):
    import base64
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    return b"".join(KEY.decrypt(base64.b64decode(c), oaep) for c in chunks).decode()


def test_registered_under_its_name():
    assert FilterModule().filters()["devinfra_zuul_secret"] is zuul_secret


def test_encrypted_values_decrypt_with_the_projects_key_and_plain_ones_stay_plain():
    text = zuul_secret({"host": "bastion01", "port": 22, "private_key": PRIVATE_KEY_TEXT}, "devinfra-bastion",
                       PUBLIC, ["private_key"])
    assert "xxxx" not in text
    [entry] = yaml.load(text, Loader=Loader)
    data = entry["secret"]["data"]
    assert entry["secret"]["name"] == "devinfra-bastion"
    assert data["host"] == "bastion01" and data["port"] == 22
    assert isinstance(data["private_key"], Encrypted) and len(data["private_key"]) == 3  # 1270 bytes / 470
    assert decrypt(data["private_key"]) == PRIVATE_KEY_TEXT


def test_the_same_inputs_keep_the_existing_text_and_new_ones_replace_it():
    first = zuul_secret({"private_key": "k1"}, "s", PUBLIC, ["private_key"])
    assert zuul_secret({"private_key": "k1"}, "s", PUBLIC, ["private_key"], existing=first) == first
    again = zuul_secret({"private_key": "k1"}, "s", PUBLIC, ["private_key"])
    assert again != first  # randomised encryption: without `existing`, every run would commit
    changed = zuul_secret({"private_key": "k2"}, "s", PUBLIC, ["private_key"], existing=first)
    assert changed != first
    assert decrypt(yaml.load(changed, Loader=Loader)[0]["secret"]["data"]["private_key"]) == "k2"


def test_a_value_to_encrypt_without_a_key_and_a_bad_key_are_errors():
    with pytest.raises(AnsibleFilterError, match="private_key must be encrypted, and no public key"):
        zuul_secret({"private_key": "k"}, "s", "", ["private_key"])
    with pytest.raises(AnsibleFilterError, match="not a PEM public key"):
        zuul_secret({"private_key": "k"}, "s", "nonsense", ["private_key"])


def test_an_empty_value_needs_no_key():
    [entry] = yaml.load(zuul_secret({"host": "", "private_key": ""}, "s", "", ["private_key"]), Loader=Loader)
    assert entry["secret"]["data"] == {"host": "", "private_key": ""}


ZUUL_PYTHON = os.environ.get("DEVINFRA_ZUUL_PYTHON", "")


@pytest.mark.skipif(not ZUUL_PYTHON, reason="set DEVINFRA_ZUUL_PYTHON to a python with zuul==14.3.0 "
                                            "to decrypt with Zuul's own code")
def test_zuul_decrypts_it_with_its_own_code(tmp_path):
    text = zuul_secret({"private_key": PRIVATE_KEY_TEXT}, "s", PUBLIC, ["private_key"])
    (tmp_path / "secret.yaml").write_text(text)
    (tmp_path / "key.pem").write_bytes(KEY.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    program = (
        "import sys, yaml\n"
        "from zuul.lib import encryption\n"
        "from zuul.lib.yamlutil import encrypted_load\n"
        "private, public = encryption.deserialize_rsa_keypair(open(sys.argv[2], 'rb').read())\n"
        "data = encrypted_load(open(sys.argv[1]).read())[0]['secret']['data']\n"
        "sys.stdout.write(data['private_key'].decrypt(private))\n"
    )
    argv = [ZUUL_PYTHON, "-c", program, str(tmp_path / "secret.yaml"), str(tmp_path / "key.pem")]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert out == PRIVATE_KEY_TEXT
