"""Indexing: Milvus schema and stores, the event stream, and the workers that apply events.

Never imports `app`: the API depends on this package, not the other way round.
"""
