"""A Zuul secret, its values encrypted with a project's public key, as the text of a config file.

``devinfra_zuul_secret(data, name, public_key, encrypt, existing)`` returns
the YAML of one ``secret`` whose values named in ``encrypt`` are
``!encrypted/pkcs1-oaep`` (RSA-OAEP with SHA-1 in chunks, Zuul's format:
only the project's private key, which Zuul keeps, decrypts them) and the
others plain. Encryption is randomised, so the text carries a fingerprint
of its inputs; when ``existing`` has the same one it is returned as it is
and the repository does not change on every run.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - only without ansible installed
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

MARK = "# devinfra-fingerprint: "


def _chunks(plaintext: str, public_key_pem: str) -> list[str]:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        key = serialization.load_pem_public_key(public_key_pem.encode())
    except ValueError as exc:
        raise AnsibleFilterError(f"the project's public key is not a PEM public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise AnsibleFilterError("the project's public key is not an RSA key (Zuul's project keys are)")
    size = key.key_size // 8 - 2 * hashes.SHA1.digest_size - 2
    data = plaintext.encode()
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303 - Zuul's format
    return [base64.b64encode(key.encrypt(data[i:i + size], oaep)).decode() for i in range(0, len(data), size)]


def zuul_secret(data: Mapping, name: str, public_key: str = "", encrypt: Sequence[str] = (),
                existing: str = "") -> str:
    if not isinstance(data, Mapping):
        raise AnsibleFilterError(f"secret {name}: the data must be a mapping, not {type(data).__name__}")
    missing = [k for k in encrypt if k in data and data[k] and not public_key]
    if missing:
        raise AnsibleFilterError(
            f"secret {name}: {', '.join(missing)} must be encrypted, and no public key was given")
    inputs = json.dumps({"name": name, "data": data, "key": public_key, "encrypt": sorted(encrypt)},
                        sort_keys=True, default=str)
    fingerprint = MARK + hashlib.sha256(inputs.encode()).hexdigest()
    if existing and fingerprint in existing.splitlines():
        return existing
    lines = ["---", "# Written by the devinfra zuul role: do not edit (see zuul.d/deploy.yaml).", fingerprint,
             "- secret:", f"    name: {json.dumps(name)}", "    data:"]
    for key, value in data.items():
        if key in encrypt and value:
            lines.append(f"      {key}: !encrypted/pkcs1-oaep")
            lines += [f"        - {chunk}" for chunk in _chunks(str(value), public_key)]
        else:
            lines.append(f"      {key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


class FilterModule:
    def filters(self):
        return {"devinfra_zuul_secret": zuul_secret}
