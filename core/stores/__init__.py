"""Stores: Milvus collections and Redis records behind small classes."""
