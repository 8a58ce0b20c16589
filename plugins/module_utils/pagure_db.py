"""Pagure's own library, opened on the review host, for the pagure_* modules in library/.

Pagure has no API to create users, groups or API tokens of a chosen value,
so the modules run on the Pagure host (as its service user) and use
Pagure's own query layer (``pagure.lib.query``) on its database, the way
``pagure-admin`` does. This helper imports Pagure with the given
configuration file and returns a database session; a missing Pagure or an
unreadable configuration becomes a PagureHostError with a sentence, never a
traceback.
"""

import os


class PagureHostError(Exception):
    """Pagure cannot be used on this host (not installed, bad configuration, database down)."""


PAGURE_DB_ARGUMENT_SPEC = dict(
    config=dict(type="path", default="/etc/pagure/pagure.cfg"),
)


def open_pagure(config_path):
    """Import Pagure configured by ``config_path``; return (pagure module namespace, config, session)."""
    if not os.path.isfile(config_path):
        raise PagureHostError(f"Pagure's configuration {config_path} does not exist on this host")
    os.environ["PAGURE_CONFIG"] = config_path
    try:
        import pagure.config
        import pagure.exceptions
        import pagure.lib.login
        import pagure.lib.model
        import pagure.lib.model_base
        import pagure.lib.query
    except ImportError as exc:
        raise PagureHostError(f"Pagure is not installed on this host ({exc})") from exc
    except Exception as exc:  # Pagure executes its configuration file: any error can come out
        raise PagureHostError(f"Pagure cannot load {config_path}: {exc}") from exc
    config = pagure.config.config
    try:
        session = pagure.lib.model_base.create_session(config["DB_URL"])
        import sqlalchemy

        session.execute(sqlalchemy.text("SELECT 1"))
    except Exception as exc:
        raise PagureHostError(
            f"Pagure's database ({_redact(config.get('DB_URL', ''))}) does not answer: {exc}"
        ) from exc
    return pagure, config, session


def _redact(url):
    """The database URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
    return url
