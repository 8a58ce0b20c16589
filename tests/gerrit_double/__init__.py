"""A CONTRACT DOUBLE of the Gerrit REST endpoints the gerrit_* modules use: not a Gerrit (see README.md).

    from tests.gerrit_double import GerritDouble

    with GerritDouble(username="admin", password="secret") as gerrit:
        gerrit.url                            # http://127.0.0.1:<random port>
        gerrit.fail("/a/projects/x", 503)     # the next matching request answers 503
        gerrit.projects["x"], gerrit.group("y"), gerrit.requests
"""

from tests.gerrit_double.server import GerritDouble, LoggedRequest

__all__ = ["GerritDouble", "LoggedRequest"]
