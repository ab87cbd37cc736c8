"""gunicorn_conf.py — ``gunicorn -c raftkv/gunicorn_conf.py 'raftkv.server:create_app()'``.

The settings and hooks live in ``raftkv/server/gunicorn_conf.py`` (read its docstring for why a
node runs exactly one gthread worker and starts its driver after the fork); this file re-exports
them so the path named in the docs works.
"""

from raftkv.server.gunicorn_conf import *  # noqa: F403
from raftkv.server.gunicorn_conf import __all__ as __all__
