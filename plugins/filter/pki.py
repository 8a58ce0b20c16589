"""What the CA checks in a host's certificate signing request before signing it.

The pki role makes each host's request on the host itself (the key never
leaves it), so the request the controller receives is whatever the host's
Python returned: a compromised host could ask for another host's names, for
a CA certificate, or for extensions nobody asked for, and the ``ownca``
provider copies a request's extensions into the certificate as they are.
``devinfra_pki_csr_problems`` compares the request, as
``community.crypto.openssl_csr_info`` reads it, with what the inventory says
the host may have, and returns one sentence per difference (an empty list:
sign it):

    csr_info | devinfra_pki_csr_problems(inventory_hostname, pki_wanted_subject_alt_names,
                                         pki_key_usage, ['serverAuth', 'clientAuth'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# The extensions the role's request carries (key usage, subject alternative
# name, basic constraints, extended key usage); any other is refused.
ALLOWED_EXTENSIONS = {"2.5.29.15", "2.5.29.17", "2.5.29.19", "2.5.29.37"}

# openssl_csr_info reports OpenSSL's long names; the role's variables use
# the short ones openssl_csr takes.
_USAGE_NAMES = {
    "digitalSignature": "Digital Signature",
    "nonRepudiation": "Non Repudiation",
    "keyEncipherment": "Key Encipherment",
    "dataEncipherment": "Data Encipherment",
    "keyAgreement": "Key Agreement",
    "keyCertSign": "Certificate Sign",
    "cRLSign": "CRL Sign",
    "serverAuth": "TLS Web Server Authentication",
    "clientAuth": "TLS Web Client Authentication",
}
# Subject alternative names: openssl_csr_info says "IP", OpenSSL's text "IP Address".
_SAN_TYPES = {"ip address": "IP", "ip": "IP", "dns": "DNS", "email": "email", "uri": "URI"}


def _usage(name: str) -> str:
    return _USAGE_NAMES.get(str(name).strip(), str(name).strip())


def _san(name: str) -> str:
    kind, _, value = str(name).strip().partition(":")
    kind = _SAN_TYPES.get(kind.strip().lower(), kind.strip())
    value = value.strip()
    return f"{kind}:{value.lower() if kind == 'DNS' else value}"


def _names(values: Sequence[str] | None) -> list[str]:
    return sorted(values or [])


def csr_problems(csr: Mapping, hostname: str, subject_alt_names: Sequence[str],
                 key_usage: Sequence[str], extended_key_usage: Sequence[str]) -> list[str]:
    """Each way the request differs from what <hostname> may be given."""
    problems = []
    if not csr.get("signature_valid", False):
        problems.append("its signature does not verify with its own key")
    subject = list(map(tuple, csr.get("subject_ordered") or []))
    if subject != [("commonName", hostname)]:
        shown = ", ".join(f"{k}={v}" for k, v in subject) or "empty"
        problems.append(f"subject is {shown}, not commonName={hostname}")
    asked = sorted({_san(n) for n in csr.get("subject_alt_name") or []})
    wanted = sorted({_san(n) for n in subject_alt_names})
    if asked != wanted:
        extra = sorted(set(asked) - set(wanted))
        missing = sorted(set(wanted) - set(asked))
        parts = ([f"names it may not have: {', '.join(extra)}"] if extra else []) + (
            [f"missing: {', '.join(missing)}"] if missing else [])
        problems.append(f"subject alternative names differ from the inventory's ({'; '.join(parts)})")
    if _names(csr.get("basic_constraints")) != ["CA:FALSE"] or not csr.get("basic_constraints_critical"):
        problems.append(f"basic constraints are {csr.get('basic_constraints')!r}, not a critical CA:FALSE")
    usage_ok = _names(csr.get("key_usage")) == sorted({_usage(u) for u in key_usage})
    if not usage_ok or not csr.get("key_usage_critical"):
        problems.append(f"key usage is {csr.get('key_usage')!r}, not a critical "
                        f"{sorted(_usage(u) for u in key_usage)!r}")
    if _names(csr.get("extended_key_usage")) != sorted({_usage(u) for u in extended_key_usage}):
        problems.append(f"extended key usage is {csr.get('extended_key_usage')!r}, "
                        f"not {sorted(_usage(u) for u in extended_key_usage)!r}")
    unexpected = sorted(set(csr.get("extensions_by_oid") or {}) - ALLOWED_EXTENSIONS)
    if unexpected:
        problems.append(f"extensions the role never asks for: {', '.join(unexpected)}")
    return problems


class FilterModule:
    def filters(self):
        return {"devinfra_pki_csr_problems": csr_problems}
