"""newsflow's submission side. It never imports jieba.

from producer import Client
client = Client()
ids = client.submit_many([{"text": "..."}])
results = client.wait(ids)
"""

from producer.client import Client, Submitted

__all__ = ["Client", "Submitted"]
