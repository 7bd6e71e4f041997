"""newsflow's submission side. It never imports jieba.

from producer import Client
client = Client()
ids = client.submit_many([{"text": "..."}])
results = client.wait(ids)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from producer.client import Client, Submitted

__all__ = ["Client", "Submitted"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the CLI's commands that need no Redis (process, segment)
    # then start without importing redis-py (about 0.1 s).
    if name in __all__:
        from producer import client

        return getattr(client, name)
    raise AttributeError(f"module 'producer' has no attribute {name!r}")
