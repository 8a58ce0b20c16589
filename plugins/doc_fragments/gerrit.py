"""What every gerrit_* module in library/ shares: its options (GERRIT_ARGUMENT_SPEC in
plugins/module_utils/gerrit.py) and its check and diff modes (GerritModule and ensure() there); modules
name it in extends_documentation_fragment, before action_common_attributes, and add their own details."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of the Gerrit site (its canonical web URL), for example V(https://review.example.org).
      - The modules call the authenticated REST API under C(<url>/a/).
    type: str
    required: true
  username:
    description:
      - Gerrit account that makes the changes. It needs the rights the change requires
        (C(Create Project), C(Create Group), ownership of the project or group, or C(Administrate Server),
        which grants them all). roles/gerrit/README.md describes the API account to create for this, a
        member of C(Administrators).
    type: str
    required: true
  password:
    description:
      - The account's Gerrit HTTP password (Settings > HTTP Credentials), sent with HTTP basic authentication.
    type: str
    required: true
  validate_certs:
    description:
      - Whether to validate the server's TLS certificate.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each answer.
    type: int
    default: 30
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The managed attributes before and after.
  platform:
    platforms: posix
notes:
  - Requests answered with HTTP 502, 503 or 504, and connections that are refused or reset, are retried
    up to three times with exponential backoff (0.5, 1 and 2 seconds). Timeouts are not retried, since the
    request may have been carried out.
  - Errors name the operation and the object, the HTTP status and Gerrit's explanation; HTTP 401 means the
    username or HTTP password is wrong, HTTP 403 that the account lacks a right, which the message names.
"""
